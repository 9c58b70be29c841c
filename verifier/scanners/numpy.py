"""NumPy `.npy` files: the header is checked, and object arrays (pickles) are analysed."""

from __future__ import annotations

import ast
import io
import math
import re
import struct
import tokenize
from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.numpy_descr import DescrKind, descr_kind
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


def _read_header(raw: bytes, *, version: int) -> object:
    """The header dictionary as numpy reads it: latin-1 (versions 1, 2) or UTF-8 (3), then
    `ast.literal_eval`, retried without Python 2 `L` suffixes for versions 1 and 2."""
    try:
        text = raw.decode("utf-8" if version == 3 else "latin-1")
    except UnicodeDecodeError:
        return None
    header = _literal(text)
    if header is None and version < 3:
        filtered = _drop_long_suffixes(text)
        header = _literal(filtered) if filtered is not None else None
    return header


def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)  # literals only: never evaluates code
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _drop_long_suffixes(text: str) -> str | None:
    """numpy's `_filter_header`: Python 2 wrote `(3L, 4L)`; drop an `L` after a number."""
    tokens: list[tokenize.TokenInfo] = []
    after_number = False
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if not (after_number and token.type == tokenize.NAME and token.string == "L"):
                tokens.append(token)
            after_number = token.type == tokenize.NUMBER
        return tokenize.untokenize(tokens)
    except (tokenize.TokenError, SyntaxError, ValueError):
        return None


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
    raw_header = stream.read(hlen)
    header = _read_header(raw_header, version=major)
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        yield ctx.finding(
            "NUMPY-INVALID", Severity.HIGH, ".npy header is not a valid dictionary", member=member
        )
        return
    descr, shape = header["descr"], header["shape"]
    kind = descr_kind(descr)
    if kind is DescrKind.OBJECT:
        yield ctx.finding(
            "NUMPY-OBJECT-ARRAY",
            Severity.MEDIUM,
            "array of Python objects: loading it unpickles its data (allow_pickle=True)",
            member=member,
        )
        yield from pickle_findings(analyse_pickle(stream), ctx, member=member)
        return
    if kind is DescrKind.UNKNOWN:
        yield ctx.finding(
            "NUMPY-DTYPE-UNSUPPORTED",
            Severity.HIGH,
            "the header's dtype is spelled in a way the scanner cannot interpret; numpy may "
            "read it as an object array, whose data it unpickles",
            member=member,
            evidence=repr(descr)[:200],
        )
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
