"""A file appears whole or not at all: a temporary file in the same folder, synced, renamed.

The one way verifier writes a small file others read (evidence, lockfiles, the Hugging Face
cache's refs and tree listings). The rename replaces a link at `path` itself and never writes
through it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write `data` to `path` through a temporary file beside it, fsync, then a rename.

    `mode` is the new file's permission bits; by default what a plain `open` would give (0o666
    less the umask). On failure the temporary file is removed and `path` is untouched.

    Raises:
        OSError: The folder cannot be written, or the disk is full.
    """
    folder = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
