"""This host's own folder of verified blobs, read as a `BlobStore` (before the shared one).

A blob there was verified when it was promoted, but the folder is still not trusted: what is
taken from it is hashed on arrival and compared with the declared digests, as any store's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import IO

from verifier.blobs.interface import BlobStoreError
from verifier.sources.quarantine import verified_blob

#: Bytes copied at a time.
_CHUNK = 1 << 20


class HostFolder:
    """The content-addressed folder under `VERIFIER_HOME` (`blobs/sha256/<2 hex>/<sha256>`)."""

    def __init__(self, home: Path) -> None:
        """Read the folder of `home` (it may not exist yet)."""
        self.home = home
        self.url = (home / "blobs" / "sha256").as_uri() if home.is_absolute() else str(home)

    def has(self, sha256: str) -> bool:
        """Whether the folder holds a regular file (not a link) under this digest."""
        try:
            return stat.S_ISREG(os.lstat(verified_blob(self.home, sha256)).st_mode)
        except OSError:
            return False

    def discard(self, sha256: str) -> None:
        """Remove what the folder keeps under `sha256` (bytes that were not the blob: the
        verified download that follows takes its place). A failure is left for next time."""
        with contextlib.suppress(OSError):
            verified_blob(self.home, sha256).unlink(missing_ok=True)

    def put(self, sha256: str, data: IO[bytes], *, size: int) -> None:
        """Refused: the folder is filled by promoting verified downloads (`Quarantine`).

        Raises:
            BlobStoreError: Always.
        """
        raise BlobStoreError(f"{self.url} takes only the blobs a scan on this host verified")

    def get(self, sha256: str, sink: IO[bytes]) -> bool:
        """Copy the blob kept under `sha256` into `sink`; False when there is none (or a link).

        Raises:
            BlobStoreError: The folder holds it but it cannot be read.
        """
        path = verified_blob(self.home, sha256)
        try:
            descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return False  # a link: nothing a scan promoted
            raise BlobStoreError(f"cannot read {path}: {exc}") from None
        try:
            with os.fdopen(descriptor, "rb") as data:
                if not stat.S_ISREG(os.fstat(data.fileno()).st_mode):
                    return False
                shutil.copyfileobj(data, sink, _CHUNK)
        except OSError as exc:
            raise BlobStoreError(f"cannot read {path}: {exc}") from None
        return True
