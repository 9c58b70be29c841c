"""A file appears whole or not at all: a temporary file in the same folder, synced, renamed.

The one way verifier writes a file others read: evidence, lockfiles, the Hugging Face cache's
refs and tree listings, and the verified copies it places (cache blobs, `--local-dir` files).
The rename replaces a link at `path` itself and never writes through it. Whatever fails (an
error while writing, a check of the bytes written, the rename, an interrupt), the temporary
file is removed and `path` is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_file(path: Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write that becomes `path` when the block ends without an exception.

    The block writes into a temporary file beside `path`; on a clean exit it is flushed,
    fsynced, given `mode` (by default what a plain `open` would give: 0o666 less the umask) and
    renamed onto `path`. An exception in the block (such as a digest that does not match) or
    in any of those steps removes the temporary file and propagates.

    Raises:
        OSError: The folder cannot be written, or the disk is full.
    """
    folder = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, _default_mode() if mode is None else mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def replace_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` through a temporary file beside it, fsync, then a rename.

    On failure the temporary file is removed and `path` is untouched.

    Raises:
        OSError: The folder cannot be written, or the disk is full.
    """
    with atomic_file(path, mode=mode) as handle:
        handle.write(data)


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
