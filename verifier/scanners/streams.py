"""Views over a ScanStream: a bounded window, a pushed-back prefix, and an inflating reader."""

from __future__ import annotations

import lzma
import zlib
from typing import Any

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

    def __init__(self, message: str, *, bomb: bool = False) -> None:
        super().__init__(message)
        self.bomb = bomb


class _DecodedStream:
    """A stream of decoded bytes: subclasses fill `_out`; reads take from its front.

    Decoded data has no random access: `read_at` returns no bytes.
    """

    _CHUNK = 1 << 20
    _out: bytearray
    _pos: int

    def _fill(self, want: int) -> None:
        raise NotImplementedError

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


class InflateStream(_DecodedStream):
    """Raw-deflate decompression of a bounded parent window, with an output cap."""

    _STEP = 16 << 10

    def __init__(self, parent: ScanStream, *, compressed: int, size: int, cap: int) -> None:
        self._src = BoundedStream(parent, compressed)
        self._decomp = zlib.decompressobj(-zlib.MAX_WBITS)
        self._size = size
        self._cap = cap
        self._out = bytearray()
        self._pos = 0
        self._done = False
        self._crc = 0

    @property
    def crc(self) -> int | None:
        """CRC-32 of the inflated data, once all of it has been produced."""
        return self._crc if self._done and not self._out else None

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
            self._crc = zlib.crc32(out, self._crc)
            if self._pos + len(self._out) > self._cap:
                raise InflateError(
                    f"member inflates past the {self._cap} bytes its directory entry declares",
                    bomb=True,
                )

    def finish(self) -> int:
        """Consume the rest of the compressed window (hashed by the parent)."""
        while self.skip(self._CHUNK):
            pass
        return self._src.finish()

    def abandon(self) -> int:
        """Skip the rest of the compressed window without decompressing it."""
        return self._src.finish()


#: Output produced per decompression step (bounds memory whatever the ratio).
_DECOMPRESS_STEP = 1 << 20
#: Size reported for a decompressing stream until its end is known.
UNKNOWN_SIZE = 1 << 62


class DecompressStream(_DecodedStream):
    """A gzip, bz2, xz, lzma (alone) or zlib stream over the rest of a parent, with a cap.

    Its size is unknown until the compressed data ends; until then `size` is UNKNOWN_SIZE.
    """

    def __init__(self, parent: ScanStream, kind: str, *, cap: int) -> None:
        import bz2

        self._src = parent
        self._kind = kind
        self._cap = cap
        self._decoder: Any
        if kind == "gzip":
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif kind == "zlib":
            self._decoder = zlib.decompressobj()
        elif kind == "bz2":
            self._decoder = bz2.BZ2Decompressor()
        elif kind == "xz":
            self._decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        elif kind == "lzma":
            self._decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE)
        else:
            raise ValueError(f"unknown compression {kind!r}")
        self._out = bytearray()
        self._pos = 0
        self._done = False

    @property
    def size(self) -> int:
        return self._pos + len(self._out) if self._done else UNKNOWN_SIZE

    def tell(self) -> int:
        return self._pos

    def _step(self) -> bytes:
        decoder = self._decoder
        if self._kind in ("gzip", "zlib"):
            data = decoder.unconsumed_tail or self._src.read(InflateStream._STEP)
            if not data:
                raise InflateError(f"{self._kind} stream is truncated")
            out: bytes = decoder.decompress(data, _DECOMPRESS_STEP)
        else:
            data = self._src.read(InflateStream._STEP) if decoder.needs_input else b""
            if not data and decoder.needs_input:
                raise InflateError(f"{self._kind} stream is truncated")
            out = decoder.decompress(data, _DECOMPRESS_STEP)
        if decoder.eof:
            self._done = True
        return out

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._done:
            try:
                out = self._step()
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                raise InflateError(f"corrupt {self._kind} data: {exc}") from None
            self._out += out
            if self._pos + len(self._out) > self._cap:
                raise InflateError(
                    f"{self._kind} stream expands past the scanner's limit of {self._cap} bytes",
                    bomb=True,
                )
