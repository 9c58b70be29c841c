"""Decompression budgets: how many bytes one file, and one scan, may decompress in all."""

from __future__ import annotations

import threading

#: A file may decompress this many bytes, over every member at every nesting level ...
FILE_FLOOR = 1 << 30
#: ... or this many times its own size, when that is more.
FILE_RATIO = 32
#: A scan may decompress this many bytes over all its files ...
SCAN_FLOOR = 4 << 30
#: ... or this many times the bytes of the files it has opened so far, when that is more.
SCAN_RATIO = 32


#: Largest dictionary (LZMA, LZMA2, xz) or model (PPMd) a decoder may allocate. The decoders
#: allocate what a header declares before they inflate a byte; 7-Zip's and xz's strongest
#: presets use 64 MiB, 7-Zip's largest choice 1.5 GiB (past this cap: refused, ARCHIVE-BOMB).
MAX_DICTIONARY = 1 << 30

#: The rule, as findings state it.
RULE = (
    f"a file may decompress max({FILE_FLOOR >> 30} GiB, {FILE_RATIO} times its size), a scan "
    f"max({SCAN_FLOOR >> 30} GiB, {SCAN_RATIO} times the bytes of its files)"
)


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


class ScanBudget:
    """The bytes a whole scan may decompress; files scanned in parallel draw on it together."""

    def __init__(self, *, floor: int = SCAN_FLOOR, ratio: int = SCAN_RATIO) -> None:
        self._floor = floor
        self._ratio = ratio
        self._opened = 0
        self._used = 0
        self._lock = threading.Lock()

    def admit(self, size: int) -> None:
        """Count a file of `size` bytes as opened (it raises the scan's allowance)."""
        with self._lock:
            self._opened += size

    @property
    def limit(self) -> int:
        """Bytes the scan may decompress, given the files opened so far."""
        return max(self._floor, self._ratio * self._opened)

    def remaining(self) -> int:
        """Bytes the scan may still decompress."""
        with self._lock:
            return max(0, self.limit - self._used)

    def take(self, n: int) -> bool:
        """Count `n` decompressed bytes; False once the scan's budget is spent."""
        with self._lock:
            self._used += n
            return self._used <= self.limit


class DecompressionBudget:
    """The bytes one file may decompress, over all its members at every nesting level.

    Drawn from its scan's budget too, when there is one. Streams that decompress charge
    every byte they produce; an archive whose directory declares more than is left is not
    inflated at all.
    """

    def __init__(self, limit: int, *, scan: ScanBudget | None = None) -> None:
        self.limit = limit
        self._scan = scan
        self._used = 0

    @classmethod
    def for_file(cls, size: int, *, scan: ScanBudget | None = None) -> DecompressionBudget:
        """The budget of a file of `size` bytes: max(FILE_FLOOR, FILE_RATIO * size)."""
        if scan is not None:
            scan.admit(size)
        return cls(max(FILE_FLOOR, FILE_RATIO * size), scan=scan)

    def remaining(self) -> int:
        """Bytes this file may still decompress (the least of its own and its scan's)."""
        left = max(0, self.limit - self._used)
        return left if self._scan is None else min(left, self._scan.remaining())

    def take(self, n: int) -> bool:
        """Count `n` decompressed bytes; False once the file's or the scan's budget is spent."""
        self._used += n
        scan_ok = self._scan.take(n) if self._scan is not None else True
        return scan_ok and self._used <= self.limit

    def exceeded(self) -> str:
        """Why decompression stopped, for the finding."""
        if self._used > self.limit or self._scan is None:
            return f"the file's decompression budget of {_gib(self.limit)} is spent ({RULE})"
        return f"the scan's decompression budget of {_gib(self._scan.limit)} is spent ({RULE})"
