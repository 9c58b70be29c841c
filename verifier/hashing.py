"""Streaming digests: one read pass per file that hashes every byte scanners read or skip."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Protocol

#: Bytes read from the file at a time. Large enough that hashing (which releases the GIL
#: for buffers over 2 KiB) dominates the per-call overhead; small enough to keep memory flat.
CHUNK_SIZE = 4 * 1024 * 1024


class _Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class FileDigests:
    """What one pass over a file measured."""

    size: int
    sha256: str
    git_sha1: str | None


def git_blob_prefix(size: int) -> bytes:
    """The header git hashes before a blob's content."""
    return b"blob %d\0" % size


class HashingReader:
    """A forward-only reader over an open file descriptor that hashes everything it passes.

    It implements the scanners' `ScanStream`: `read` returns bytes, `skip` discards them,
    and both feed the digests, so scanning and hashing share a single read of the file.
    Memory stays at one chunk whatever the file size.
    """

    def __init__(
        self,
        fd: int,
        *,
        size: int,
        git_sha1: bool = False,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._fd = fd
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

    @property
    def size(self) -> int:
        """The size the file had when it was opened."""
        return self._size

    @property
    def bytes_read(self) -> int:
        """Bytes read from the file so far (all of them hashed)."""
        return self._read_total

    def tell(self) -> int:
        """Offset of the next byte a scanner will get."""
        return self._consumed

    def _fill(self) -> bool:
        """Read and hash the next chunk; False at end of file."""
        if self._eof:
            return False
        n = os.readv(self._fd, [self._view])
        if n == 0:
            self._eof = True
            return False
        chunk = self._view[:n]
        self._sha256.update(chunk)
        if self._git is not None:
            self._git.update(chunk)
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
                fresh = self._view[self._end : self._end + got]
                self._sha256.update(fresh)
                if self._git is not None:
                    self._git.update(fresh)
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
        return FileDigests(size=self._read_total, sha256=self._sha256.hexdigest(), git_sha1=git)
