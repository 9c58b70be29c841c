"""Blobs between this host's content-addressed folder and a shared store.

Nothing taken from a shared store is kept unless its SHA-256 and size are those the Hub
declared; nothing is put there unless it verified here first.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from verifier.blobs.interface import BlobStore, BlobStoreError
from verifier.hashing import FileDigests, HashingReader
from verifier.model import DeclaredFile
from verifier.sources.huggingface.client import CappedWriter, OversizeError
from verifier.sources.quarantine import touch_blob, verified_blob

log = logging.getLogger(__name__)


def take(
    store: BlobStore,
    declared: DeclaredFile,
    landed: Path,
    *,
    sha256: str | None = None,
    on_bytes: Callable[[int], None] = lambda _n: None,
) -> bool:
    """Write the blob the store keeps for `declared` to `landed` and check it (see
    `take_from`)."""
    return take_from(store.get, store.url, declared, landed, sha256=sha256, on_bytes=on_bytes)


def take_from(
    get: Callable[[str, IO[bytes]], bool],
    where: str,
    declared: DeclaredFile,
    landed: Path,
    *,
    sha256: str | None = None,
    on_bytes: Callable[[int], None] = lambda _n: None,
) -> bool:
    """Write the blob `get` (a store's, or this host's folder's) writes for `declared` to
    `landed` and check it. Returns whether `landed` now holds the declared blob; else (no
    such blob, other bytes, the store unreachable) False, with `landed` removed. `where`
    names the store in the log.

    An LFS file is looked up by its declared SHA-256. A file outside LFS is declared by its
    git blob id only: it is looked up by `sha256` (what an earlier scan measured of bytes with
    that id), and the bytes taken must have both that SHA-256 and the declared git blob id.

    The check reads the landed bytes through the one hashing reader. A blob taken for a scan
    is then read (and hashed) again by the scan: the one path where bytes are hashed twice,
    so that a store holding other bytes falls back to the Hub instead of failing it.
    """
    digest = declared.sha256 if declared.lfs else sha256
    if digest is None or (not declared.lfs and declared.git_sha1 is None):
        return False
    arrived: FileDigests | None = None
    try:
        with open(landed, "x+b") as sink:
            writer = CappedWriter(sink, limit=declared.size, on_bytes=on_bytes)
            if get(digest, writer):  # type: ignore[arg-type]
                sink.flush()
                sink.seek(0)
                arrived = HashingReader(
                    sink.fileno(), size=writer.written, git_sha1=not declared.lfs
                ).drain()
    except (BlobStoreError, OversizeError, OSError) as exc:
        log.warning("%s: not taken from the blob store: %s", declared.path, exc)
        arrived = None
    if arrived is not None and not _is_declared(arrived, declared, digest):
        log.warning(
            "%s: blob store %s holds other bytes under sha256:%s (got sha256:%s, %d bytes); "
            "fetching from the Hub",
            declared.path,
            where,
            digest,
            arrived.sha256,
            arrived.size,
        )
        arrived = None
    if arrived is None:
        landed.unlink(missing_ok=True)
    return arrived is not None


def _is_declared(arrived: FileDigests, declared: DeclaredFile, sha256: str) -> bool:
    """Whether the bytes taken are the declared file kept under `sha256`."""
    if arrived.sha256 != sha256 or arrived.size != declared.size:
        return False
    return declared.lfs or arrived.git_sha1 == declared.git_sha1


def restore(store: BlobStore, home: Path, declared: DeclaredFile) -> bool:
    """Copy the blob of `declared` from the store into this host's folder, verified.

    Returns whether the folder now holds it (it may have already).
    """
    if declared.sha256 is None:
        return False
    final = verified_blob(home, declared.sha256)
    if final.is_file():
        touch_blob(final)
        return True
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.parent / f".{declared.sha256}.{uuid.uuid4().hex}.partial"
    if not take(store, declared, partial):
        return False
    os.replace(partial, final)
    final.chmod(0o444)
    return True


def share(store: BlobStore, sha256: str, location: Path) -> None:
    """Put a blob this host verified into the store, unless it holds it already. A failure
    is logged: the scan stands, and another host fetches the blob from the Hub instead."""
    try:
        if store.has(sha256):
            return
        with open(location, "rb") as data:
            store.put(sha256, data, size=os.fstat(data.fileno()).st_size)
    except (BlobStoreError, OSError) as exc:
        log.warning("sha256:%s was not put into the blob store %s: %s", sha256, store.url, exc)
