"""An in-memory ScanStream for scanner tests that records how much was read and skipped."""

from __future__ import annotations


class BytesScanStream:
    """A forward-only stream over `data`, optionally claiming a different `size`.

    Claiming a size larger than the data stands in for a file that shrank after it was
    opened: reads and skips then come up short, as they would on disk.
    """

    def __init__(self, data: bytes, *, size: int | None = None) -> None:
        self._data = data
        self._size = len(data) if size is None else size
        self._pos = 0
        self.bytes_read = 0
        self.bytes_skipped = 0

    @property
    def size(self) -> int:
        return self._size

    def read(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("negative read")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        self.bytes_read += len(chunk)
        return chunk

    def skip(self, n: int) -> int:
        if n < 0:
            raise ValueError("negative skip")
        step = min(n, len(self._data) - self._pos)
        self._pos += step
        self.bytes_skipped += step
        return step

    def tell(self) -> int:
        return self._pos

    def read_at(self, offset: int, n: int) -> bytes:
        return self._data[offset : offset + n]
