"""NumPy `.npy` files: the header is checked, and object arrays (pickles) are analysed."""

from __future__ import annotations

import ast
import math
import re
import struct
from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.pickle import analyse_pickle, pickle_findings

_MAGIC = b"\x93NUMPY"
#: Largest header accepted (numpy itself caps headers at 10 000 bytes by default).
MAX_HEADER = 1 << 20
_SIMPLE_DESCR = re.compile(r"^[<>|=]?([a-zA-Z])(\d+)$")


def _itemsize(descr: object) -> int | None:
    if not isinstance(descr, str):
        return None
    match = _SIMPLE_DESCR.match(descr)
    if not match:
        return None
    kind, width = match.group(1), int(match.group(2))
    return width * 4 if kind == "U" else width


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return "O" in descr.lstrip("<>|=")[:1]
    if isinstance(descr, list | tuple):
        return any(_has_object(part) for part in descr)
    return False


def scan_npy(
    stream: ScanStream, ctx: ScanContext, *, member: str | None = None
) -> Iterator[Finding]:
    """Check an `.npy` header at the stream's position; analyse an object array's pickle."""
    start = stream.tell()
    fixed = stream.read(8)
    if len(fixed) < 8 or fixed[:6] != _MAGIC:
        yield ctx.finding(
            "NUMPY-INVALID", Severity.HIGH, "not a valid .npy header", member=member, offset=start
        )
        return
    major = fixed[6]
    if major == 1:
        raw = stream.read(2)
        hlen = struct.unpack("<H", raw)[0] if len(raw) == 2 else MAX_HEADER + 1
    elif major in (2, 3):
        raw = stream.read(4)
        hlen = struct.unpack("<I", raw)[0] if len(raw) == 4 else MAX_HEADER + 1
    else:
        yield ctx.finding(
            "NUMPY-INVALID", Severity.HIGH, f"unknown .npy version {major}", member=member
        )
        return
    if hlen > MAX_HEADER:
        yield ctx.finding(
            "NUMPY-INVALID",
            Severity.HIGH,
            f".npy header of {hlen} bytes is too large",
            member=member,
        )
        return
    text = stream.read(hlen).decode("latin-1")
    try:
        header = ast.literal_eval(text)  # literals only: never evaluates code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        header = None
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        yield ctx.finding(
            "NUMPY-INVALID", Severity.HIGH, ".npy header is not a valid dictionary", member=member
        )
        return
    descr, shape = header["descr"], header["shape"]
    if _has_object(descr):
        yield ctx.finding(
            "NUMPY-OBJECT-ARRAY",
            Severity.MEDIUM,
            "array of Python objects: loading it unpickles its data (allow_pickle=True)",
            member=member,
        )
        yield from pickle_findings(analyse_pickle(stream), ctx, member=member)
        return
    itemsize = _itemsize(descr)
    if (
        itemsize is None
        or not isinstance(shape, tuple)
        or not all(isinstance(d, int) and d >= 0 for d in shape)
    ):
        return
    expected = math.prod(shape) * itemsize
    available = stream.size - stream.tell()
    if expected > available:
        yield ctx.finding(
            "NUMPY-TRUNCATED",
            Severity.HIGH,
            f"array needs {expected} data bytes but only {available} follow the header",
            member=member,
        )


class NumpyScanner(Scanner):
    """Scans `.npy` files."""

    formats = frozenset({FileFormat.NUMPY})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for the array header and any pickled payload."""
        yield from scan_npy(stream, ctx)
