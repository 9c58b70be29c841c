"""Views over a ScanStream: a bounded window, a pushed-back prefix, and an inflating reader."""

from __future__ import annotations

import zlib

from verifier.scanners.interface import ScanStream


class BoundedStream:
    """The next `length` bytes of a parent stream, as a stream of their own."""

    def __init__(self, parent: ScanStream, length: int) -> None:
        self._parent = parent
        self._base = parent.tell()
        self._length = length

    @property
    def size(self) -> int:
        return self._length

    def tell(self) -> int:
        return self._parent.tell() - self._base

    def _left(self) -> int:
        return max(0, self._length - self.tell())

    def read(self, n: int) -> bytes:
        return self._parent.read(min(n, self._left()))

    def skip(self, n: int) -> int:
        return self._parent.skip(min(n, self._left()))

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or offset >= self._length:
            return b""
        return self._parent.read_at(self._base + offset, min(n, self._length - offset))

    def finish(self) -> int:
        """Skip to the end of the window; return the bytes that were missing, if any."""
        left = self._left()
        return left - self._parent.skip(left)


class PrefixedStream:
    """A stream with bytes already read pushed back in front of it."""

    def __init__(self, prefix: bytes, inner: ScanStream) -> None:
        self._prefix = prefix
        self._inner = inner
        self._base = inner.tell() - len(prefix)

    @property
    def size(self) -> int:
        return self._inner.size

    def tell(self) -> int:
        return self._inner.tell() - len(self._prefix)

    def read(self, n: int) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
            return head + self._inner.read(n - len(head))
        return self._inner.read(n)

    def skip(self, n: int) -> int:
        if self._prefix:
            head, self._prefix = self._prefix[:n], self._prefix[n:]
            return len(head) + self._inner.skip(n - len(head))
        return self._inner.skip(n)

    def read_at(self, offset: int, n: int) -> bytes:
        return self._inner.read_at(offset, n)


class InflateError(Exception):
    """Compressed data is corrupt or larger than allowed."""


class InflateStream:
    """Raw-deflate decompression of a bounded parent window, with an output cap."""

    _CHUNK = 1 << 20
    _STEP = 16 << 10

    def __init__(self, parent: ScanStream, *, compressed: int, size: int, cap: int) -> None:
        self._src = BoundedStream(parent, compressed)
        self._decomp = zlib.decompressobj(-zlib.MAX_WBITS)
        self._size = size
        self._cap = cap
        self._out = bytearray()
        self._pos = 0
        self._done = False

    @property
    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def _fill(self, want: int) -> None:
        # Small input steps bound the output of one call (deflate expands at most ~1032:1).
        while len(self._out) < want and not self._done:
            data = self._src.read(self._STEP)
            try:
                out = self._decomp.decompress(data) if data else self._decomp.flush()
            except zlib.error as exc:
                raise InflateError(f"corrupt deflate data: {exc}") from None
            if not data or self._decomp.eof:
                self._done = True
            self._out += out
            if self._pos + len(self._out) > self._cap:
                raise InflateError("decompressed size exceeds the scanner's limit (zip bomb?)")

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self._out[:n])
        del self._out[:n]
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        skipped = 0
        while skipped < n:
            got = len(self.read(min(self._CHUNK, n - skipped)))
            if got == 0:
                break
            skipped += got
        return skipped

    def read_at(self, offset: int, n: int) -> bytes:
        return b""

    def finish(self) -> int:
        """Consume the rest of the compressed window (hashed by the parent)."""
        while self.skip(self._CHUNK):
            pass
        return self._src.finish()

    def abandon(self) -> int:
        """Skip the rest of the compressed window without decompressing it."""
        return self._src.finish()
