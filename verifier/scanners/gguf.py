"""GGUF (llama.cpp): every metadata entry and tensor record parsed and bounds-checked.

Metadata values the scanner does not need (vocabularies, merges) are skipped, not kept, so
memory stays flat; chat templates are kept (up to a cap) and analysed as Jinja.
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream

#: Most metadata entries accepted (real files have tens).
MAX_KV = 1 << 16
#: Most tensors accepted (the largest mixture-of-experts files have tens of thousands).
MAX_TENSORS = 1 << 20
#: Longest key or tensor name accepted (the format caps keys at 65535 bytes).
MAX_NAME = 65535
#: Deepest nesting of arrays inside arrays.
MAX_ARRAY_DEPTH = 4
#: Most dimensions of a tensor (GGML_MAX_DIMS).
MAX_DIMS = 4
_DEFAULT_ALIGNMENT = 32
_TEMPLATE_PREFIX = "tokenizer.chat_template"
_SKIP_CHUNK = 1 << 22

# Value types: fixed sizes, and the struct format of those read for their value.
_STRING, _ARRAY = 8, 9
_FIXED_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTEGER_FORMATS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}

#: ggml tensor types: (elements per block, bytes per block), as ggml defines them.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}


class GgufFormatError(Exception):
    """The file violates the GGUF format at `offset`."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class _Reader:
    """Exact reads over the scan stream; a short read is a format error."""

    def __init__(self, stream: ScanStream) -> None:
        self.stream = stream

    def left(self) -> int:
        return self.stream.size - self.stream.tell()

    def exact(self, n: int, what: str) -> bytes:
        at = self.stream.tell()
        if n > self.left():
            raise GgufFormatError(f"{what} runs past the end of the file", at)
        data = self.stream.read(n)
        if len(data) != n:
            raise GgufFormatError(f"{what} is truncated", at)
        return data

    def skip(self, n: int, what: str) -> None:
        at = self.stream.tell()
        if n > self.left():
            raise GgufFormatError(f"{what} runs past the end of the file", at)
        while n > 0:
            step = self.stream.skip(min(n, _SKIP_CHUNK))
            if step == 0:
                raise GgufFormatError(f"{what} is truncated", at)
            n -= step

    def u32(self, what: str) -> int:
        value: int = struct.unpack("<I", self.exact(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = struct.unpack("<Q", self.exact(8, what))[0]
        return value

    def name(self, what: str) -> str:
        at = self.stream.tell()
        length = self.u64(f"length of {what}")
        if length > MAX_NAME:
            raise GgufFormatError(f"{what} is {length} bytes long (limit {MAX_NAME})", at)
        raw = self.exact(length, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GgufFormatError(f"{what} is not valid UTF-8: {raw[:40]!r}", at) from None


@dataclass(frozen=True)
class GgufTensor:
    """One entry of the tensor table, as the scanner checked it.

    Attributes:
        name: Tensor name.
        dims: Dimensions in ggml order (`ne[0]`, the fastest-varying, first).
        type_name: ggml type name (`F16`, `Q8_0`, ...).
        offset: Offset of its data from the start of the data section.
        nbytes: Size of its data.
        at: Offset of its table entry in the file.
    """

    name: str
    dims: tuple[int, ...]
    type_name: str
    offset: int
    nbytes: int
    at: int


@dataclass(frozen=True)
class GgufTable:
    """A GGUF file's tensor table: its tensors, and where their data section starts."""

    tensors: tuple[GgufTensor, ...]
    data_start: int


def read_tensor_table(stream: ScanStream) -> GgufTable:
    """Parse a GGUF file's header, metadata and tensor table as the scanner does.

    The lineage fingerprint reads tensors through this, so it sees exactly the tensors the
    scan checked (a duplicated name or overlapping data refuses the file here).

    Raises:
        GgufFormatError: The file is malformed, or past the scanner's limits.
    """
    parse = _scan(_Reader(stream), None)
    while True:
        try:
            finding = next(parse)
        except StopIteration as done:
            table: GgufTable = done.value
            return table
        raise GgufFormatError(finding.message, finding.offset or 0)


class GgufScanner(Scanner):
    """Parses the header, metadata and tensor table; analyses chat templates."""

    formats = frozenset({FileFormat.GGUF})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for the metadata, the tensor table and every chat template.

        Raises:
            ScanLimitError: never; limits are reported as GGUF-MALFORMED findings.
        """
        try:
            yield from _scan(_Reader(stream), ctx)
        except GgufFormatError as exc:
            yield ctx.finding(
                "GGUF-MALFORMED",
                Severity.HIGH,
                f"GGUF file is malformed: {exc}; loaders may misread it",
                offset=exc.offset,
            )


def _scan(reader: _Reader, ctx: ScanContext | None) -> Generator[Finding, None, GgufTable]:
    """Yield findings (with no context, chat templates are skipped unread); return the table."""
    magic = reader.exact(4, "magic")
    if magic != b"GGUF":
        raise GgufFormatError("no GGUF magic", 0)
    version = reader.u32("version")
    if version not in (2, 3):
        raise GgufFormatError(f"version {version} is not supported (2 and 3 little-endian are)", 4)
    tensor_count = reader.u64("tensor count")
    kv_count = reader.u64("metadata count")
    if tensor_count > MAX_TENSORS or tensor_count * 24 > reader.left():
        raise GgufFormatError(f"tensor count {tensor_count} is implausible for the file", 8)
    if kv_count > MAX_KV or kv_count * 13 > reader.left():
        raise GgufFormatError(f"metadata count {kv_count} is implausible for the file", 16)
    alignment = _DEFAULT_ALIGNMENT
    keys: set[str] = set()
    for _ in range(kv_count):
        at = reader.stream.tell()
        key = reader.name("metadata key")
        if key in keys:
            if ctx is None:
                raise GgufFormatError(f"metadata key {key!r} appears twice", at)
            yield ctx.finding(
                "GGUF-DUPLICATE-KEY",
                Severity.HIGH,
                f"metadata key {key!r} appears twice; loaders may use either value",
                offset=at,
                evidence=key,
            )
        keys.add(key)
        value_type = reader.u32(f"type of {key!r}")
        if key == "general.alignment":
            alignment = _alignment(reader, value_type, at)
        elif key.startswith(_TEMPLATE_PREFIX) and value_type == _STRING and ctx is not None:
            yield from _template(reader, ctx, key, at)
        else:
            _skip_value(reader, value_type, key, depth=0)
    tensors = [_tensor(reader, alignment) for _ in range(tensor_count)]
    data_start = yield from _check_tensors(reader, ctx, tensors, alignment)
    return GgufTable(tuple(tensors), data_start)


def _alignment(reader: _Reader, value_type: int, at: int) -> int:
    if value_type != 4:
        raise GgufFormatError("general.alignment is not a uint32", at)
    value = reader.u32("general.alignment")
    if value == 0 or value & (value - 1):
        raise GgufFormatError(f"general.alignment {value} is not a power of two", at)
    return value


def _skip_value(reader: _Reader, value_type: int, key: str, *, depth: int) -> None:
    at = reader.stream.tell()
    if value_type in _FIXED_SIZES:
        reader.skip(_FIXED_SIZES[value_type], f"value of {key!r}")
    elif value_type == _STRING:
        reader.skip(reader.u64(f"length of {key!r}"), f"string value of {key!r}")
    elif value_type == _ARRAY:
        if depth >= MAX_ARRAY_DEPTH:
            raise GgufFormatError(f"arrays in {key!r} are nested too deeply", at)
        element_type = reader.u32(f"element type of {key!r}")
        count = reader.u64(f"length of array {key!r}")
        if element_type in _FIXED_SIZES:
            reader.skip(count * _FIXED_SIZES[element_type], f"array {key!r}")
            return
        if element_type not in (_STRING, _ARRAY):
            raise GgufFormatError(f"array {key!r} has unknown element type {element_type}", at)
        if count * (8 if element_type == _STRING else 12) > reader.left():
            raise GgufFormatError(f"array {key!r} of {count} elements runs past the end", at)
        for _ in range(count):
            _skip_value(reader, element_type, key, depth=depth + 1)
    else:
        raise GgufFormatError(f"value of {key!r} has unknown type {value_type}", at)


def _template(reader: _Reader, ctx: ScanContext, key: str, at: int) -> Iterator[Finding]:
    # Imported for a file that holds a chat template: Jinja's parser is not loaded for GGUF
    # files without one, nor for the weight readers of verified lineage (which read the table).
    from verifier.scanners.chat_template import (
        MAX_TEMPLATE_CHARS,
        TemplateParseError,
        analyse_template,
    )
    from verifier.scanners.remote_code import mutation_finding

    length = reader.u64(f"length of {key!r}")
    # UTF-8 takes at most 4 bytes a character: anything longer cannot be analysed.
    if length > 4 * MAX_TEMPLATE_CHARS:
        reader.skip(length, f"string value of {key!r}")
        yield _invalid(ctx, key, at, f"{length} bytes is past the analysis limit")
        return
    raw = reader.exact(length, f"string value of {key!r}")
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield _invalid(ctx, key, at, f"not valid UTF-8 ({exc.reason})")
        return
    try:
        issues = analyse_template(source)
    except TemplateParseError as exc:
        yield _invalid(ctx, key, at, str(exc))
        return
    seen: set[str] = set()
    for issue in issues:
        if issue.message in seen:
            continue
        seen.add(issue.message)
        line = f" (template line {issue.line})" if issue.line else ""
        if not issue.escape:
            where = f"chat template {key!r} {issue.message}{line}"
            yield mutation_finding(ctx, where, issue.evidence, offset=at)
            continue
        yield ctx.finding(
            "GGUF-TEMPLATE-INJECTION",
            Severity.CRITICAL,
            f"chat template {key!r} {issue.message}{line}: rendering it outside Jinja's "
            "sandbox runs code",
            offset=at,
            evidence=issue.evidence,
        )


def _invalid(ctx: ScanContext, key: str, at: int, why: str) -> Finding:
    return ctx.finding(
        "GGUF-TEMPLATE-INVALID",
        Severity.HIGH,
        f"chat template {key!r} could not be analysed: {why}",
        offset=at,
        evidence=key,
    )


def _tensor(reader: _Reader, alignment: int) -> GgufTensor:
    at = reader.stream.tell()
    name = reader.name("tensor name")
    n_dims = reader.u32(f"dimension count of {name!r}")
    if n_dims > MAX_DIMS:
        raise GgufFormatError(f"tensor {name!r} has {n_dims} dimensions (limit {MAX_DIMS})", at)
    dims = [reader.u64(f"dimension of {name!r}") for _ in range(n_dims)]
    ggml_type = reader.u32(f"type of {name!r}")
    offset = reader.u64(f"offset of {name!r}")
    if ggml_type not in GGML_TYPES:
        raise GgufFormatError(f"tensor {name!r} has unknown ggml type {ggml_type}", at)
    type_name, block, block_bytes = GGML_TYPES[ggml_type]
    elements = 1
    for dim in dims:
        elements *= dim
    if elements >= 1 << 63:
        raise GgufFormatError(f"tensor {name!r} has {elements} elements (overflow)", at)
    if dims and dims[0] % block:
        raise GgufFormatError(
            f"tensor {name!r}: first dimension {dims[0]} is not a multiple of the "
            f"{type_name} block size {block}",
            at,
        )
    if offset % alignment:
        raise GgufFormatError(f"tensor {name!r} offset {offset} is not aligned to {alignment}", at)
    return GgufTensor(name, tuple(dims), type_name, offset, elements // block * block_bytes, at)


def _check_tensors(
    reader: _Reader, ctx: ScanContext | None, tensors: list[GgufTensor], alignment: int
) -> Generator[Finding, None, int]:
    """Yield duplicate names; raise on data out of the file or overlapping; return where the
    data section starts."""
    end_of_table = reader.stream.tell()
    data_start = -(-end_of_table // alignment) * alignment
    data_size = reader.stream.size - data_start
    if tensors and data_size < 0:
        raise GgufFormatError("tensor data section is missing", end_of_table)
    names: set[str] = set()
    previous: GgufTensor | None = None
    for tensor in sorted(tensors, key=lambda t: (t.offset, t.nbytes)):
        if tensor.name in names:
            if ctx is None:
                raise GgufFormatError(f"tensor name {tensor.name!r} appears twice", tensor.at)
            yield ctx.finding(
                "GGUF-DUPLICATE-KEY",
                Severity.HIGH,
                f"tensor name {tensor.name!r} appears twice; loaders may use either",
                offset=tensor.at,
                evidence=tensor.name,
            )
        names.add(tensor.name)
        if tensor.offset + tensor.nbytes > data_size:
            raise GgufFormatError(
                f"tensor {tensor.name!r} ({tensor.nbytes} bytes at data offset "
                f"{tensor.offset}) runs past the end of the file",
                tensor.at,
            )
        if previous is not None and tensor.offset < previous.offset + previous.nbytes:
            raise GgufFormatError(
                f"tensors {previous.name!r} and {tensor.name!r} overlap", tensor.at
            )
        previous = tensor
    return data_start
