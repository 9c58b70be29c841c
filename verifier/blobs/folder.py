"""This host's own folder of verified blobs: read as a `BlobStore` (before the shared one), and
listed and deleted from as a `BlobListing` by `verifier blobs gc`.

A blob there was verified when it was promoted, but the folder is still not trusted: what is
taken from it is hashed on arrival and compared with the declared digests, as any store's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from verifier.blobs.interface import BlobStoreError, StoredBlob, blob_digest
from verifier.sources.quarantine import verified_blob

#: Bytes copied at a time.
_CHUNK = 1 << 20


class HostFolder:
    """The content-addressed folder under `VERIFIER_HOME` (`blobs/sha256/<2 hex>/<sha256>`),
    filled by promoting verified downloads (`Quarantine`). A blob's time, for the collector,
    is its file's modification time (touched on each use)."""

    def __init__(self, home: Path) -> None:
        """Read the folder of `home` (it may not exist yet)."""
        self.home = home
        self._root = home / "blobs" / "sha256"
        self.url = str(self._root)

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

    def blobs(self) -> Iterator[StoredBlob]:
        """Every regular file named as the folder names blobs (never through a link).

        Raises:
            BlobStoreError: The folder could not be read.
        """
        if not self._root.is_dir():
            return
        try:
            for shard in sorted(os.scandir(self._root), key=lambda e: e.name):
                if not shard.is_dir(follow_symlinks=False):
                    continue
                for entry in sorted(os.scandir(shard.path), key=lambda e: e.name):
                    sha256 = blob_digest(f"sha256/{shard.name}/{entry.name}")
                    if sha256 is None or not entry.is_file(follow_symlinks=False):
                        continue
                    found = entry.stat(follow_symlinks=False)
                    stored_at = datetime.fromtimestamp(found.st_mtime, UTC)
                    yield StoredBlob(sha256, found.st_size, stored_at)
        except OSError as exc:
            raise BlobStoreError(f"blob folder {self.url}: cannot list the blobs: {exc}") from None

    def delete(self, sha256: str) -> None:
        """Delete the blob kept under `sha256` (none there: no error).

        Raises:
            BlobStoreError: The file could not be deleted.
        """
        try:
            verified_blob(self.home, sha256).unlink(missing_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"blob folder {self.url}: cannot delete {sha256}: {exc}") from None
