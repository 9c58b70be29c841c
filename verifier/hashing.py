"""Streaming digests: one read pass per file that hashes every byte scanners read or skip."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from verifier.model import ExtraDigest

#: Bytes read from the file at a time. Large enough that hashing (which releases the GIL
#: for buffers over 2 KiB) dominates the per-call overhead; small enough to keep memory flat.
CHUNK_SIZE = 4 * 1024 * 1024


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


class ChunkObserver(Protocol):
    """Sees every byte of a file once, in order, as the reader hashes it (extra digests)."""

    def update(self, data: memoryview, /) -> None: ...

    def digests(self) -> tuple[ExtraDigest, ...]: ...


def new_hasher(algorithm: str) -> _Hasher:
    """A fresh hasher for `algorithm`, a digest a signature may ask for by the name model
    signing writes (`sha256` or `blake2b`).

    Raises:
        KeyError: the algorithm is not supported.
    """
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake2b":
        return hashlib.blake2b()
    raise KeyError(algorithm)


class WholeFileDigest:
    """One more digest of the whole file (such as blake2b) computed in the same pass."""

    def __init__(self, algorithm: str) -> None:
        self._algorithm = algorithm
        self._hasher = new_hasher(algorithm)

    def update(self, data: memoryview, /) -> None:
        """Hash the next bytes."""
        self._hasher.update(data)

    def digests(self) -> tuple[ExtraDigest, ...]:
        """The file's digest."""
        return (ExtraDigest(self._algorithm, self._hasher.hexdigest()),)


class ShardDigests:
    """Digests of consecutive `shard_size` slices of the file (the last may be shorter).

    An empty file has no shard, as in OpenSSF model signing's shard serialization.
    """

    def __init__(self, algorithm: str, shard_size: int) -> None:
        if shard_size <= 0:
            raise ValueError(f"shard size must be positive, not {shard_size}")
        self._algorithm = algorithm
        self._label = f"{algorithm}-sharded-{shard_size}"
        self._shard_size = shard_size
        self._offset = 0  # bytes seen so far
        self._start = 0  # where the current shard starts
        self._hasher = new_hasher(algorithm)
        self._done: list[ExtraDigest] = []

    def update(self, data: memoryview, /) -> None:
        """Hash the next bytes, closing shards at their boundaries."""
        pos = 0
        while pos < len(data):
            room = self._start + self._shard_size - self._offset
            take = min(room, len(data) - pos)
            self._hasher.update(data[pos : pos + take])
            pos += take
            self._offset += take
            if self._offset - self._start == self._shard_size:
                self._close()

    def _close(self) -> None:
        self._done.append(
            ExtraDigest(self._label, self._hasher.hexdigest(), start=self._start, end=self._offset)
        )
        self._start = self._offset
        self._hasher = new_hasher(self._algorithm)

    def digests(self) -> tuple[ExtraDigest, ...]:
        """Every shard's digest, in order (closing a final partial shard)."""
        if self._offset > self._start:
            self._close()
        return tuple(self._done)


@dataclass(frozen=True)
class FileStamp:
    """What `fstat` says about an open file: compared before and after a pass over it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileStamp:
        """The stamp of a `stat` result."""
        return cls(info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev)


def file_change(fd: int, before: FileStamp, *, location: str | None = None) -> str | None:
    """How the file behind `fd` (and the name `location`) changed since `before`, or None.

    Size, modification and change times and the inode are compared: a same-size rewrite in
    place moves the times; a file renamed over `location` has another inode. See
    docs/scanners.md for what this cannot see.
    """
    after = FileStamp.of(os.fstat(fd))
    changed = [
        name
        for name in ("size", "mtime_ns", "ctime_ns", "inode", "device")
        if getattr(after, name) != getattr(before, name)
    ]
    if changed:
        return "its " + ", ".join(changed) + " changed while it was read"
    if location is not None:
        try:
            now = FileStamp.of(os.stat(location))
        except OSError as exc:
            return f"it was removed or became unreadable while it was read ({exc.strerror})"
        if (now.inode, now.device) != (before.inode, before.device):
            return "another file was put in its place while it was read"
    return None


@dataclass(frozen=True)
class FileDigests:
    """What one pass over a file measured."""

    size: int
    sha256: str
    git_sha1: str | None
    extra: tuple[ExtraDigest, ...] = ()
    #: How the file changed during the pass (see `file_change`); None when it did not.
    changed: str | None = None


def git_blob_prefix(size: int) -> bytes:
    """The header git hashes before a blob's content."""
    return b"blob %d\0" % size


class HashingReader:
    """A forward-only reader over an open file descriptor that hashes everything it passes.

    It implements the scanners' `ScanStream`: `read` returns bytes, `skip` discards them,
    and both feed the digests, so scanning and hashing share a single read of the file.
    Memory stays at one chunk whatever the file size. The file's `fstat` is taken when the
    reader is made and compared when it is drained (`FileDigests.changed`).

    It is the one place file bytes are hashed: every source (a local file, a file of an HF
    cache snapshot, a Hub download landed in quarantine) hands its files to a reader, so the
    digests recorded and compared with a declaration or a signature are of the bytes the
    scanners saw, each hashed once.
    """

    def __init__(
        self,
        fd: int,
        *,
        size: int,
        git_sha1: bool = False,
        chunk_size: int = CHUNK_SIZE,
        observers: Sequence[ChunkObserver] = (),
        location: str | None = None,
    ) -> None:
        self._fd = fd
        self._stamp = FileStamp.of(os.fstat(fd))
        self._location = location
        self._size = size
        self._buf = bytearray(chunk_size)
        self._view = memoryview(self._buf)
        self._start = 0  # next unread byte in the buffer
        self._end = 0  # bytes of the buffer holding file data
        self._consumed = 0  # file offset of self._buf[self._start]
        self._read_total = 0  # bytes read from the file so far
        self._eof = False
        self._sha256 = hashlib.sha256()
        self._git: _Hasher | None = None
        if git_sha1:
            self._git = hashlib.sha1(usedforsecurity=False)
            self._git.update(git_blob_prefix(size))
        self._observers = tuple(observers)

    @property
    def size(self) -> int:
        """The size the file had when it was opened."""
        return self._size

    def tell(self) -> int:
        """Offset of the next byte a scanner will get."""
        return self._consumed

    def _hash(self, chunk: memoryview) -> None:
        self._sha256.update(chunk)
        if self._git is not None:
            self._git.update(chunk)
        for observer in self._observers:
            observer.update(chunk)

    def _fill(self) -> bool:
        """Read and hash the next chunk; False at end of file."""
        if self._eof:
            return False
        n = os.readv(self._fd, [self._view])
        if n == 0:
            self._eof = True
            return False
        self._hash(self._view[:n])
        self._read_total += n
        self._start, self._end = 0, n
        return True

    def read(self, n: int) -> bytes:
        """Return up to `n` bytes, fewer only at end of file."""
        if n <= 0:
            return b""
        available = self._end - self._start
        if available >= n:
            out = bytes(self._view[self._start : self._start + n])
            self._start += n
            self._consumed += n
            return out
        parts = []
        remaining = n
        while remaining > 0:
            if self._start >= self._end and not self._fill():
                break
            take = min(remaining, self._end - self._start)
            parts.append(bytes(self._view[self._start : self._start + take]))
            self._start += take
            self._consumed += take
            remaining -= take
        return b"".join(parts)

    def peek(self, n: int) -> bytes:
        """Up to `n` upcoming bytes without consuming them (at most one chunk)."""
        n = min(n, len(self._buf))
        if self._end - self._start < n and not self._eof:
            # Move the unread tail to the front and top up, hashing only the new bytes.
            tail = self._end - self._start
            self._buf[:tail] = self._buf[self._start : self._end]
            self._start, self._end = 0, tail
            while self._end < n and not self._eof:
                got = os.readv(self._fd, [self._view[self._end :]])
                if got == 0:
                    self._eof = True
                    break
                self._hash(self._view[self._end : self._end + got])
                self._read_total += got
                self._end += got
        return bytes(self._view[self._start : min(self._end, self._start + n)])

    def read_at(self, offset: int, n: int) -> bytes:
        """Read up to `n` bytes at `offset` without moving the stream (metadata only)."""
        if offset < 0 or n <= 0:
            return b""
        return os.pread(self._fd, n, offset)

    def skip(self, n: int) -> int:
        """Pass over up to `n` bytes (hashed, not kept); return how many were skipped."""
        skipped = 0
        while skipped < n:
            if self._start >= self._end and not self._fill():
                break
            take = min(n - skipped, self._end - self._start)
            self._start += take
            self._consumed += take
            skipped += take
        return skipped

    def changed(self) -> str | None:
        """How the file changed since the reader was made (see `file_change`), or None."""
        return file_change(self._fd, self._stamp, location=self._location)

    def drain(self) -> FileDigests:
        """Hash whatever the scanners left unread and return the file's digests."""
        self._consumed += self._end - self._start
        self._start = self._end
        while self._fill():
            self._consumed += self._end
            self._start = self._end
        git = None
        if self._git is not None:
            git = self._git.hexdigest()
        extra = tuple(d for observer in self._observers for d in observer.digests())
        return FileDigests(
            size=self._read_total,
            sha256=self._sha256.hexdigest(),
            git_sha1=git,
            extra=extra,
            changed=self.changed(),
        )
