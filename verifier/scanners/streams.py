"""Views over a ScanStream: a bounded window, a pushed-back prefix, and an inflating reader."""

from __future__ import annotations

import lzma
import zlib
from typing import Any

from verifier.scanners.budget import MAX_DICTIONARY, DecompressionBudget
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


class ReplayStream:
    """A parent's bytes re-read from `start` through `read_at` (not hashed, parent not moved).

    For the few places a loader reads bytes out of file order (torch.load's fallback to a
    pickle at offset 0 after tarfile gave up; tar data that overlaps later headers).
    """

    def __init__(self, parent: ScanStream, *, start: int = 0) -> None:
        self._parent = parent
        self._pos = start

    @property
    def size(self) -> int:
        return self._parent.size

    def tell(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        out = self._parent.read_at(self._pos, max(0, min(n, self.size - self._pos)))
        self._pos += len(out)
        return out

    def skip(self, n: int) -> int:
        step = max(0, min(n, self.size - self._pos))
        self._pos += step
        return step

    def read_at(self, offset: int, n: int) -> bytes:
        return self._parent.read_at(offset, n)


class InflateError(Exception):
    """Compressed data is corrupt or larger than allowed."""

    def __init__(self, message: str, *, bomb: bool = False) -> None:
        super().__init__(message)
        self.bomb = bomb


def _charge(budget: DecompressionBudget | None, produced: int) -> None:
    """Count decompressed bytes against the file's (and scan's) budget; stop once it is spent."""
    if budget is not None and not budget.take(produced):
        raise InflateError(budget.exceeded(), bomb=True)


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
        with memoryview(self._out) as view:  # one copy, not a slice and then a copy of it
            out = bytes(view[:n])
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

    def __init__(
        self,
        parent: ScanStream,
        *,
        compressed: int,
        size: int,
        cap: int,
        budget: DecompressionBudget | None = None,
    ) -> None:
        self._src = BoundedStream(parent, compressed)
        self._budget = budget
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
        # Output is taken a step at a time (a 16 KiB input step can inflate to 16 MiB), so
        # memory per nesting level stays at one step whatever the ratio.
        while len(self._out) < want and not self._done:
            data = self._decomp.unconsumed_tail or self._src.read(self._STEP)
            try:
                out = (
                    self._decomp.decompress(data, _DECOMPRESS_STEP)
                    if data
                    else self._decomp.flush()
                )
            except zlib.error as exc:
                raise InflateError(f"corrupt deflate data: {exc}") from None
            if not data or self._decomp.eof:
                self._done = True
            self._out += out
            self._crc = zlib.crc32(out, self._crc)
            _charge(self._budget, len(out))
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


_MAGIC = {"gzip": b"\x1f\x8b", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def lz4_available() -> bool:
    """Whether the optional lz4 package (extra `lz4`) can be imported to read lz4 frames."""
    try:
        import lz4.frame  # noqa: F401
    except ImportError:
        return False
    return True


class _Lz4Frames:
    """lz4.frame's decompressor, its errors (RuntimeError) translated to InflateError."""

    def __init__(self) -> None:
        import lz4.frame

        self._decoder = lz4.frame.LZ4FrameDecompressor()

    @property
    def eof(self) -> bool:
        return bool(self._decoder.eof)

    @property
    def needs_input(self) -> bool:
        return bool(self._decoder.needs_input)

    @property
    def unused_data(self) -> bytes:
        return self._decoder.unused_data or b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        try:
            out: bytes = self._decoder.decompress(data, max_length)
        except RuntimeError as exc:
            raise InflateError(f"corrupt lz4 data: {exc}") from None
        return out


def _decoder_for(kind: str) -> Any:
    import bz2

    if kind == "lz4":
        return _Lz4Frames()

    if kind == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if kind == "zlib":
        return zlib.decompressobj()
    if kind == "bz2":
        return bz2.BZ2Decompressor()
    if kind == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=LZMA_MEMLIMIT)
    if kind == "lzma":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)
    raise ValueError(f"unknown compression {kind!r}")


#: liblzma's memory limit for xz and lzma-alone streams: MAX_DICTIONARY and its small overhead.
#: A header declaring more is refused (`memory_limited`) before the dictionary is allocated.
LZMA_MEMLIMIT = MAX_DICTIONARY + (16 << 20)


def memory_limited(exc: BaseException) -> bool:
    """Whether liblzma refused a stream whose header declares more memory than LZMA_MEMLIMIT."""
    return isinstance(exc, lzma.LZMAError) and "Memory usage limit" in str(exc)


class DecompressStream(_DecodedStream):
    """Every concatenated gzip, bz2, xz, lzma (alone), lz4 or zlib stream over the rest of a parent.

    Loaders read them all (gzip.open, BZ2File and LZMAFile go on to the next stream; joblib's
    bz2/xz/lzma readers are those), so a stream that ends is followed by the next one of the same
    kind; bytes that do not start one end the data, as those readers ignore or reject them.
    Its size is unknown until the compressed data ends; until then `size` is UNKNOWN_SIZE.
    """

    def __init__(
        self, parent: ScanStream, kind: str, *, cap: int, budget: DecompressionBudget | None = None
    ) -> None:
        self._src = parent
        self._budget = budget
        self._kind = kind
        self._cap = cap
        self._decoder: Any = _decoder_for(kind)
        self._pending = b""
        self._out = bytearray()
        self._pos = 0
        self._done = False
        #: How many compressed streams were decoded (or begun).
        self.streams = 1
        #: Compressed bytes left after the last stream (not read by the loaders).
        self.trailing = 0

    @property
    def size(self) -> int:
        return self._pos + len(self._out) if self._done else UNKNOWN_SIZE

    def tell(self) -> int:
        return self._pos

    def _input(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        return self._src.read(InflateStream._STEP)

    def _step(self) -> bytes:
        decoder = self._decoder
        if self._kind in ("gzip", "zlib"):
            data = decoder.unconsumed_tail or self._input()
            if not data:
                raise InflateError(f"{self._kind} stream is truncated")
            out: bytes = decoder.decompress(data, _DECOMPRESS_STEP)
        else:
            data = self._input() if decoder.needs_input else b""
            if not data and decoder.needs_input:
                raise InflateError(f"{self._kind} stream is truncated")
            out = decoder.decompress(data, _DECOMPRESS_STEP)
        if decoder.eof:
            self._next_stream(decoder.unused_data)
        return out

    def _next_stream(self, rest: bytes) -> None:
        """After a stream's end: start the next stream of the same kind, or stop."""
        while True:
            if self._kind == "gzip":
                rest = rest.lstrip(b"\0")  # gzip skips zero padding between members
            if len(rest) >= 8:
                break
            more = self._src.read(InflateStream._STEP)
            if not more:
                break
            rest += more
        if rest and self._starts_stream(rest):
            self._decoder = _decoder_for(self._kind)
            self._pending = rest
            self.streams += 1
            return
        self._done = True
        self.trailing = len(rest) + max(0, self._src.size - self._src.tell())

    def _starts_stream(self, data: bytes) -> bool:
        magic = _MAGIC.get(self._kind)
        if magic is not None:
            return data.startswith(magic)
        # zlib and lzma-alone have no magic: a stream starts if its head decodes. lz4 frames
        # are decoded by LZ4FrameFile one after another, skippable frames included (joblib).
        try:
            _decoder_for(self._kind).decompress(data[:4096], 64)
        except (zlib.error, lzma.LZMAError, InflateError) as exc:
            return memory_limited(exc)  # a stream, whose dictionary is refused when it is read
        return True

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._done:
            try:
                out = self._step()
            except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
                if memory_limited(exc):
                    raise InflateError(
                        f"{self._kind} header declares a dictionary larger than the "
                        f"{MAX_DICTIONARY >> 20} MiB a decoder may allocate; refused before "
                        "allocating it",
                        bomb=True,
                    ) from None
                raise InflateError(f"corrupt {self._kind} data: {exc}") from None
            self._out += out
            _charge(self._budget, len(out))
            if self._pos + len(self._out) > self._cap:
                raise InflateError(
                    f"{self._kind} stream expands past the scanner's limit of {self._cap} bytes",
                    bomb=True,
                )
