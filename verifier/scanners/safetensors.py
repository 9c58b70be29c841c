"""Safetensors scanner: validates the whole JSON header and skips the tensor data unread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

from verifier.bounded_json import JsonLimitError, JsonLimits, check_shape
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.facts import safetensors_facts
from verifier.scanners.interface import ScanContext, Scanner, ScanStream

HEADER_CAP = 16 * 1024 * 1024
"""Largest header accepted, in bytes; the safetensors library accepts up to 100,000,000.

Parsing a header costs up to about nine times its size (the decoded text and a metadata
string are four bytes a character once one character is outside the Basic Multilingual Plane),
so the library's cap let one file take over 600 MiB. Real headers are far smaller: about 110
bytes a tensor, so even DeepSeek-V3's 91,000 tensors in one file would be about 10 MB.
"""

#: What a header may hold as JSON, checked before it is parsed: a 90 MB header of empty lists
#: took 42 s and 2.4 GB to parse. Each tensor is seven values, so a million is about 140,000
#: tensors in one file; at two million a valid header of 280,000 one-element tensors took 14 s
#: and 420 MiB to scan.
HEADER_SHAPE = JsonLimits(max_bytes=HEADER_CAP, max_depth=64, max_nodes=1_000_000)

MAX_PROBLEMS = 64
"""Problems reported per header; the rest are summarised in one more."""

# Element width in bits, from the Dtype enum of the safetensors crate (0.8).
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

_U64_MAX = 2**64 - 1
_TENSOR_KEYS = frozenset({"dtype", "shape", "data_offsets"})
_METADATA_KEY = "__metadata__"
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class HeaderProblem:
    """One way a header breaks the format.

    Attributes:
        message: What is wrong, naming the tensor and what was expected.
        truncation: Whether the file is shorter than the header declares.
        offset: Byte offset within the header, when one position is at fault.
    """

    message: str
    truncation: bool = False
    offset: int | None = None


def validate_header(header_bytes: bytes, *, data_size: int) -> list[str]:
    """Check a safetensors JSON header against the data section that follows it.

    Args:
        header_bytes: The N header bytes that follow the 8-byte length prefix.
        data_size: Size of the data section: file size minus 8 minus N.

    Returns:
        One message per problem; empty when the header is valid.
    """
    return [problem.message for problem in header_problems(header_bytes, data_size=data_size)]


def header_problems(header_bytes: bytes | bytearray, *, data_size: int) -> list[HeaderProblem]:
    """Like `validate_header`, but with the kind and position of each problem.

    Args:
        header_bytes: The N header bytes that follow the 8-byte length prefix.
        data_size: Size of the data section: file size minus 8 minus N.

    Returns:
        The problems found, at most MAX_PROBLEMS plus one summarising the rest.
    """
    return _checked_header(header_bytes, data_size=data_size)[1]


def _checked_header(
    header_bytes: bytes | bytearray, *, data_size: int
) -> tuple[dict[str, object] | None, list[HeaderProblem]]:
    """The parsed header when it is an object, and its problems (parsed once, after the caps)."""
    if len(header_bytes) > HEADER_CAP:
        message = f"header is {len(header_bytes)} bytes, over the {HEADER_CAP} cap"
        return None, [HeaderProblem(message)]
    try:
        check_shape(header_bytes, HEADER_SHAPE)  # before a copy is decoded or anything built
    except JsonLimitError as exc:
        return None, [HeaderProblem(f"header is past the JSON caps ({exc})")]
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [HeaderProblem(f"header is not valid UTF-8: {exc.reason}", offset=exc.start)]
    try:
        header = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        offset = len(text[: exc.pos].encode("utf-8"))
        return None, [HeaderProblem(f"header is not valid JSON: {exc.msg}", offset=offset)]
    except _DuplicateKeyError as exc:
        return None, [HeaderProblem(f"header has a {exc}")]
    except (ValueError, RecursionError) as exc:
        return None, [HeaderProblem(f"header is not valid JSON: {exc}")]
    del text  # the objects are built; the decoded copy is not needed beside them
    if not isinstance(header, dict):
        return None, [HeaderProblem(f"header must be a JSON object, got {_json_type(header)}")]
    problems: list[HeaderProblem] = []
    spans: list[tuple[str, int, int]] = []
    # Valid UTF-8 decodes to no lone surrogate: only a backslash-u escape can make one.
    escapes = b"\\u" in header_bytes
    for name, info in header.items():
        if name == _METADATA_KEY:
            problems.extend(HeaderProblem(message) for message in _metadata_problems(info))
            continue
        messages, span = _tensor_problems(name, info, escapes=escapes)
        problems.extend(HeaderProblem(message) for message in messages)
        if span is not None:
            spans.append(span)
    problems.extend(_layout_problems(spans, data_size=data_size))
    if len(problems) > MAX_PROBLEMS:
        rest = len(problems) - MAX_PROBLEMS
        problems = [*problems[:MAX_PROBLEMS], HeaderProblem(f"... and {rest} more problems")]
    return header, problems


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Parsers disagree on which duplicate wins; a header that relies on one is refused.
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: find the first duplicate for the message
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"non-standard constant {name}")


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "number"


def _is_unicode(text: str) -> bool:
    # json accepts lone surrogate escapes ("\ud800"); the Rust loader does not.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64_MAX


def _metadata_problems(metadata: object) -> list[str]:
    if not isinstance(metadata, dict):
        return [f"__metadata__ must be an object of strings, got {_json_type(metadata)}"]
    problems = []
    for key, value in metadata.items():
        if not isinstance(value, str):
            problems.append(f"__metadata__[{key!r}] must be a string, got {_json_type(value)}")
        elif not (_is_unicode(key) and _is_unicode(value)):
            problems.append(f"__metadata__[{key!r}] contains an unpaired surrogate")
    return problems


def _tensor_problems(
    name: str, info: object, *, escapes: bool = True
) -> tuple[list[str], tuple[str, int, int] | None]:
    """Problems with one tensor entry, and its (name, begin, end) if its offsets are usable.

    `escapes` False says the header holds no `\\u` escape, so no name can hold a surrogate.
    """
    label = f"tensor {name!r}"
    if not isinstance(info, dict):
        return [f"{label}: expected an object with dtype, shape, data_offsets"], None
    problems = []
    if escapes and not _is_unicode(name):
        problems.append(f"{label}: name contains an unpaired surrogate")
    if info.keys() != _TENSOR_KEYS:
        missing, extra = _TENSOR_KEYS - info.keys(), info.keys() - _TENSOR_KEYS
        problems.append(
            f"{label}: expected exactly dtype, shape, data_offsets;"
            f" missing {sorted(missing)}, unexpected {sorted(extra)}"
        )
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    bits = DTYPE_BITS.get(dtype) if isinstance(dtype, str) else None
    if "dtype" in info and bits is None:
        problems.append(f"{label}: unknown dtype {dtype!r}")
    valid_shape = isinstance(shape, list) and all(_is_u64(dim) for dim in shape)
    dims: list[int] | None = shape if valid_shape else None
    if "shape" in info and dims is None:
        problems.append(f"{label}: shape must be a list of non-negative integers, got {shape!r}")
    span = None
    if isinstance(offsets, list) and len(offsets) == 2 and all(_is_u64(o) for o in offsets):
        begin, end = offsets
        if begin <= end:
            span = (name, begin, end)
    if "data_offsets" in info and span is None:
        problems.append(f"{label}: data_offsets must be [begin, end] with 0 <= begin <= end")
    if bits is not None and dims is not None and span is not None:
        problems.extend(_size_problems(label, dtype, dims, bits, span[2] - span[1]))
    return problems, span


def _size_problems(label: str, dtype: object, shape: list[int], bits: int, span: int) -> list[str]:
    elements = 1
    for dim in shape:
        elements *= dim
        if elements > _U64_MAX:
            # The Rust loader multiplies in 64 bits and refuses what overflows.
            return [f"{label}: element count of shape {shape} overflows 64 bits"]
    total_bits = elements * bits
    if total_bits > _U64_MAX:
        return [f"{label}: size of shape {shape} in {dtype} overflows 64 bits"]
    if total_bits % 8:
        return [f"{label}: {elements} x {dtype} is {total_bits} bits, not whole bytes"]
    if total_bits // 8 != span:
        return [
            f"{label}: shape {shape} of {dtype} needs {total_bits // 8} bytes,"
            f" but data_offsets span {span}"
        ]
    return []


def _layout_problems(spans: list[tuple[str, int, int]], *, data_size: int) -> list[HeaderProblem]:
    """Tensors must tile the data section exactly: from 0, no gaps, no overlaps, to the end."""
    problems = []
    covered, previous, contiguous = 0, "the start of the data section", True
    for name, begin, end in sorted(spans, key=lambda span: (span[1], span[2])):
        where = f"tensor {name!r} data_offsets [{begin}, {end}]"
        if begin > covered:
            problems.append(HeaderProblem(f"{where} leave a gap of {begin - covered} bytes"))
            contiguous = False
        elif begin < covered:
            problems.append(HeaderProblem(f"{where} overlap {previous} (which ends at {covered})"))
            contiguous = False
        if end >= covered:
            covered, previous = end, f"tensor {name!r}"
    if covered < data_size:
        trailing = data_size - covered
        problems.append(HeaderProblem(f"{trailing} trailing bytes after {previous}"))
    elif covered > data_size:
        message = f"tensor data ends at {covered}, beyond the {data_size}-byte data section"
        if contiguous:
            problems.append(HeaderProblem(f"file truncated: {message}", truncation=True))
        else:
            beyond = sorted(name for name, _, end in spans if end > data_size)[:8]
            problems.append(HeaderProblem(f"{message} (tensors {beyond})"))
    return problems


class SafetensorsScanner(Scanner):
    """Validates a safetensors header completely; never reads tensor data into memory."""

    formats = frozenset({FileFormat.SAFETENSORS})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield a finding per header problem; a valid file yields none.

        Raises:
            ScanLimitError: never; oversized headers are reported as findings.
        """
        size = stream.size
        prefix = _read_exactly(stream, 8)
        if len(prefix) < 8:
            yield _truncated(ctx, f"{len(prefix)} bytes, too short for the 8-byte length", 0)
            return
        length = int.from_bytes(prefix, "little")
        if length < 2:
            yield _invalid(ctx, f"header length {length} is below the minimum of 2 ('{{}}')", 0)
            return
        if length > HEADER_CAP:
            yield _invalid(ctx, f"header length {length} exceeds the {HEADER_CAP}-byte cap", 0)
            return
        if length > size - 8:
            message = f"header length {length} but only {size - 8} bytes follow the prefix"
            yield _truncated(ctx, message, 0)
            return
        header = _read_exactly(stream, length)
        if len(header) < length:
            yield _truncated(ctx, f"header ends after {len(header)} of {length} bytes", 8)
            return
        data_size = size - 8 - length
        parsed, problems = _checked_header(header, data_size=data_size)
        if not problems:
            ctx.note("safetensors", safetensors_facts(parsed))
        del parsed, header
        for problem in problems:
            offset = 8 + (problem.offset or 0)
            if problem.truncation:
                yield _truncated(ctx, problem.message, size)
            else:
                yield _invalid(ctx, problem.message, offset)
        skipped = _skip_exactly(stream, data_size)
        if skipped < data_size:
            message = f"data section ends after {skipped} of {data_size} bytes"
            yield _truncated(ctx, message, 8 + length + skipped)


def _invalid(ctx: ScanContext, message: str, offset: int) -> Finding:
    return ctx.finding("SAFETENSORS-HEADER-INVALID", Severity.HIGH, message, offset=offset)


def _truncated(ctx: ScanContext, message: str, offset: int) -> Finding:
    return ctx.finding("SAFETENSORS-TRUNCATED", Severity.HIGH, message, offset=offset)


def _read_exactly(stream: ScanStream, n: int) -> bytearray:
    # Into one buffer sized up front: chunks joined at the end held the header twice.
    buffer = bytearray(n)
    filled = 0
    with memoryview(buffer) as view:
        while filled < n:
            chunk = stream.read(min(n - filled, _READ_CHUNK))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
    del buffer[filled:]
    return buffer


def _skip_exactly(stream: ScanStream, n: int) -> int:
    skipped = 0
    while skipped < n:
        step = stream.skip(n - skipped)
        if step <= 0:
            break
        skipped += step
    return skipped
