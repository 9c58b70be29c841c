"""Safetensors header validation against real files, hostile headers and the reference loader."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner
from verifier.scanners.safetensors import (
    DTYPE_BITS,
    HEADER_CAP,
    MAX_PROBLEMS,
    SafetensorsScanner,
    validate_header,
)

INVALID = "SAFETENSORS-HEADER-INVALID"
TRUNCATED = "SAFETENSORS-TRUNCATED"
CTX = ScanContext(path="model.safetensors", format=FileFormat.SAFETENSORS)


def build(
    header: dict[str, object] | bytes, data: bytes = b"", *, length: int | None = None
) -> bytes:
    """A safetensors file: 8-byte length, header bytes, data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    declared = len(raw) if length is None else length
    return declared.to_bytes(8, "little") + raw + data


def tensor(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def scan(data: bytes, *, size: int | None = None) -> tuple[list[Finding], BytesScanStream]:
    stream = BytesScanStream(data, size=size)
    return list(SafetensorsScanner().scan(stream, CTX)), stream


def library_accepts(data: bytes) -> bool:
    """Whether the reference safetensors loader deserializes `data`."""
    try:
        safetensors.deserialize(data)
    except safetensors.SafetensorError:
        return False
    return True


def header_of(data: bytes) -> tuple[bytes, int]:
    length = int.from_bytes(data[:8], "little")
    return data[8 : 8 + length], len(data) - 8 - length


REAL_FILES = {
    "numpy-f32": lambda: safetensors.numpy.save({"w": np.ones((3, 4), dtype=np.float32)}),
    "numpy-mixed": lambda: safetensors.numpy.save(
        {
            "i64": np.arange(5, dtype=np.int64),
            "bool": np.array([True, False, True]),
            "f16": np.zeros(3, dtype=np.float16),
            "u8": np.zeros(7, dtype=np.uint8),
            "f64": np.zeros((2, 0), dtype=np.float64),
        },
        metadata={"format": "np", "note": "mixed"},
    ),
    "torch-bf16": lambda: safetensors.torch.save({"w": torch.ones(4, 4, dtype=torch.bfloat16)}),
    "torch-f8-c64-u16": lambda: safetensors.torch.save(
        {
            "f8": torch.zeros(8, dtype=torch.float8_e4m3fn),
            "c64": torch.zeros(3, dtype=torch.complex64),
            "u16": torch.zeros(5, dtype=torch.uint16),
        }
    ),
    "torch-f4": lambda: safetensors.torch.save({"w": torch.zeros(4, dtype=torch.float4_e2m1fn_x2)}),
    "empty": lambda: safetensors.numpy.save({}),
    "many": lambda: safetensors.torch.save({f"layer.{i}.w": torch.zeros(3, 2) for i in range(300)}),
}


def test_scanner_is_registered_for_safetensors() -> None:
    assert Scanner.registry[FileFormat.SAFETENSORS] is SafetensorsScanner


@pytest.mark.parametrize("make", REAL_FILES.values(), ids=REAL_FILES.keys())
def test_real_files_yield_no_findings_and_tensor_data_is_skipped(make: object) -> None:
    data: bytes = make()  # type: ignore[operator]
    findings, stream = scan(data)
    assert findings == []
    header_len = int.from_bytes(data[:8], "little")
    assert stream.bytes_read == 8 + header_len
    assert stream.bytes_skipped == len(data) - 8 - header_len
    assert stream.tell() == len(data)


@pytest.mark.parametrize("make", REAL_FILES.values(), ids=REAL_FILES.keys())
def test_validate_header_accepts_real_headers(make: object) -> None:
    header, data_size = header_of(make())  # type: ignore[operator]
    assert validate_header(header, data_size=data_size) == []


VALID_EDGES = {
    "zero-size-tensors-share-an-offset": build(
        {
            "a": tensor("F32", [0], 0, 0),
            "b": tensor("F32", [0, 3], 0, 0),
            "c": tensor("U8", [2], 0, 2),
        },
        b"\x00\x00",
    ),
    "f4-whole-bytes": build({"w": tensor("F4", [4], 0, 2)}, b"\x00" * 2),
    "f6-whole-bytes": build({"w": tensor("F6_E2M3", [4], 0, 3)}, b"\x00" * 3),
    "keys-out-of-offset-order": build(
        {"z": tensor("U8", [1], 0, 1), "a": tensor("I16", [1], 1, 3)}, b"\x00" * 3
    ),
    "padded-header": build(b'  {"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}    ', b"\x00"),
    "scalar": build({"w": tensor("F64", [], 0, 8)}, b"\x00" * 8),
}


@pytest.mark.parametrize("data", VALID_EDGES.values(), ids=VALID_EDGES.keys())
def test_valid_edge_cases_are_accepted_like_the_library(data: bytes) -> None:
    assert library_accepts(data)
    assert scan(data)[0] == []


@dataclass(frozen=True)
class Hostile:
    data: bytes
    code: str
    needle: str
    library_rejects: bool = True
    size: int | None = None


GOOD_HEADER = {"w": tensor("F32", [2], 0, 8)}
GOOD = build(GOOD_HEADER, b"\x00" * 8)

HOSTILE = {
    "length-2**63": Hostile(build(b"{}", length=2**63), INVALID, "exceeds"),
    "length-over-cap": Hostile(build(b"{}", length=HEADER_CAP + 1), INVALID, "exceeds"),
    "length-0": Hostile(build(b"", length=0), INVALID, "below the minimum"),
    "length-1": Hostile(build(b"{", length=1), INVALID, "below the minimum"),
    "length-beyond-file": Hostile(build(b"{}", length=1000), TRUNCATED, "only 2 bytes follow"),
    "shorter-than-prefix": Hostile(b"\x02\x00\x00", TRUNCATED, "too short"),
    "not-utf8": Hostile(build(b'{"\xff\xfe":{}}'), INVALID, "not valid UTF-8"),
    "not-json": Hostile(build(b'{"w": '), INVALID, "not valid JSON"),
    "array": Hostile(build(b"[1, 2]"), INVALID, "must be a JSON object, got array"),
    "string": Hostile(build(b'"hello"'), INVALID, "got string"),
    "duplicate-key": Hostile(
        build(
            b'{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
            b'"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            b"\x00\x00",
        ),
        INVALID,
        "duplicate key 'w'",
    ),
    "nan": Hostile(build(b'{"__metadata__":{"x":NaN}}'), INVALID, "NaN"),
    "deep-nesting": Hostile(
        build(b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), INVALID, "JSON"
    ),
    "huge-integer": Hostile(
        build(b'{"w":{"dtype":"U8","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,1]}}', b"\0"),
        INVALID,
        "JSON",
    ),
    "unknown-dtype": Hostile(build({"w": tensor("F128", [1], 0, 16)}, b"\0" * 16), INVALID, "F128"),
    "size-mismatch": Hostile(
        build({"w": tensor("F32", [3], 0, 8)}, b"\0" * 8), INVALID, "needs 12 bytes"
    ),
    "overlap": Hostile(
        build({"a": tensor("F32", [2], 0, 8), "b": tensor("F32", [2], 4, 12)}, b"\0" * 12),
        INVALID,
        "overlap",
    ),
    "gap": Hostile(
        build({"a": tensor("F32", [1], 0, 4), "b": tensor("F32", [1], 8, 12)}, b"\0" * 12),
        INVALID,
        "gap of 4 bytes",
    ),
    "not-from-zero": Hostile(build({"a": tensor("U8", [4], 4, 8)}, b"\0" * 8), INVALID, "gap"),
    "offsets-beyond-data": Hostile(
        build({"a": tensor("U8", [4], 0, 4), "b": tensor("U8", [100], 8, 108)}, b"\0" * 12),
        INVALID,
        "beyond the 12-byte data section",
    ),
    "trailing-data": Hostile(build(GOOD_HEADER, b"\x00" * 12), INVALID, "4 trailing bytes"),
    "data-but-no-tensors": Hostile(build({}, b"\x00" * 3), INVALID, "3 trailing bytes"),
    "metadata-value-not-string": Hostile(
        build({"__metadata__": {"v": 1}}), INVALID, "__metadata__['v'] must be a string"
    ),
    "metadata-not-object": Hostile(build({"__metadata__": ["x"]}), INVALID, "must be an object"),
    "truncated-data-section": Hostile(GOOD[:-3], TRUNCATED, "file truncated"),
    "file-shrank-while-reading": Hostile(
        GOOD[:-3], TRUNCATED, "data section ends after 5 of 8", size=len(GOOD)
    ),
    "header-shrank-while-reading": Hostile(
        GOOD[:20], TRUNCATED, "header ends after 12", size=len(GOOD)
    ),
    "extra-tensor-key": Hostile(
        build({"w": {**tensor("U8", [1], 0, 1), "extra": 1}}, b"\0"),
        INVALID,
        "unexpected ['extra']",
        library_rejects=False,
    ),
    "missing-tensor-key": Hostile(
        build({"w": {"dtype": "U8", "shape": [1]}}, b"\0"), INVALID, "missing ['data_offsets']"
    ),
    "tensor-not-object": Hostile(build({"w": 5}), INVALID, "expected an object"),
    "negative-dim": Hostile(build({"w": tensor("U8", [-1], 0, 0)}), INVALID, "non-negative"),
    "boolean-dim": Hostile(
        build(b'{"w":{"dtype":"U8","shape":[true],"data_offsets":[0,1]}}', b"\0"),
        INVALID,
        "non-negative integers",
    ),
    "float-offsets": Hostile(
        build(b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0.0,1.0]}}', b"\0"),
        INVALID,
        "data_offsets must be",
    ),
    "begin-after-end": Hostile(build({"w": tensor("U8", [0], 4, 0)}, b"\0" * 4), INVALID, "begin"),
    "three-offsets": Hostile(
        build(b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}', b"\0"),
        INVALID,
        "data_offsets must be",
    ),
    "sub-byte-remainder": Hostile(
        build({"w": tensor("F4", [3], 0, 2)}, b"\0" * 2), INVALID, "not whole bytes"
    ),
    "shape-overflow": Hostile(
        build({"w": tensor("U8", [2**32, 2**32, 0], 0, 0)}), INVALID, "overflows 64 bits"
    ),
    "lone-surrogate-name": Hostile(
        build(b'{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
        INVALID,
        "unpaired surrogate",
    ),
}


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_headers_become_high_findings(case: Hostile) -> None:
    findings, _ = scan(case.data, size=case.size)
    assert findings, "a hostile file must yield at least one finding"
    assert all(f.severity is Severity.HIGH and f.file == CTX.path for f in findings)
    matching = [f for f in findings if f.code == case.code and case.needle in f.message]
    assert matching, [(f.code, f.message) for f in findings]


@pytest.mark.parametrize(
    "case",
    [case for case in HOSTILE.values() if case.library_rejects and case.size is None],
    ids=[key for key, case in HOSTILE.items() if case.library_rejects and case.size is None],
)
def test_the_reference_loader_rejects_what_we_flag(case: Hostile) -> None:
    assert not library_accepts(case.data)


def test_json_error_offset_points_into_the_header() -> None:
    findings, _ = scan(build(b'{"w": x}'))
    assert [f.offset for f in findings] == [8 + 6]


def test_utf8_error_offset_points_at_the_bad_byte() -> None:
    findings, _ = scan(build(b'{"ab\xff":{}}'))
    assert [f.offset for f in findings] == [8 + 4]


def test_header_over_cap_is_refused_without_reading_it() -> None:
    findings, stream = scan(build(b"{}", length=HEADER_CAP + 1))
    assert [f.code for f in findings] == [INVALID]
    assert stream.bytes_read == 8


def test_problems_are_capped() -> None:
    header = {f"t{i}": tensor("F128", [1], i, i + 1) for i in range(500)}
    findings, _ = scan(build(header, b"\0" * 500))
    assert len(findings) == MAX_PROBLEMS + 1
    assert "436 more problems" in findings[-1].message


def test_validate_header_names_the_tensor_and_expectation() -> None:
    problems = validate_header(
        json.dumps({"emb": tensor("BF16", [2, 3], 0, 10)}).encode(), data_size=10
    )
    assert problems == [
        "tensor 'emb': shape [2, 3] of BF16 needs 12 bytes, but data_offsets span 10"
    ]


def test_dtype_table_matches_the_library() -> None:
    # Every dtype we accept must round-trip through the reference loader.
    for dtype, bits in DTYPE_BITS.items():
        count = 8
        data = build(
            {"w": tensor(dtype, [count], 0, count * bits // 8)}, b"\0" * (count * bits // 8)
        )
        assert library_accepts(data), dtype
        assert scan(data)[0] == [], dtype


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    mutated = bytearray(data)
    for position, value in edits:
        mutated[position % len(mutated)] = value
    return bytes(mutated[:cut] if cut is not None else mutated)


MUTATION_BASE = build(
    {
        "__metadata__": {"format": "pt"},
        "a": tensor("F16", [2, 2], 0, 8),
        "b": tensor("I8", [3], 8, 11),
        "c": tensor("F4", [2], 11, 12),
    },
    b"\x01" * 12,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(MUTATION_BASE) - 1), st.integers(0, 255)), max_size=6
    ),
    cut=st.none() | st.integers(0, len(MUTATION_BASE)),
)
def test_mutated_files_never_raise_and_never_pass_what_the_library_refuses(
    edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = _mutate(MUTATION_BASE, edits, cut)
    findings, _ = scan(data)
    assert {f.code for f in findings} <= {INVALID, TRUNCATED}
    assert all(f.severity is Severity.HIGH for f in findings)
    if not findings:
        assert library_accepts(data)


@st.composite
def tensor_tables(draw: st.DrawFn) -> tuple[bytes, int]:
    """Well-typed headers whose sizes and offsets are sometimes wrong, with a data size."""
    names = draw(st.lists(st.text("abcxyz.", min_size=1, max_size=4), unique=True, max_size=5))
    header: dict[str, object] = {}
    offset = 0
    for name in names:
        dtype = draw(st.sampled_from(sorted(DTYPE_BITS)))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        elements = int(np.prod(shape)) if shape else 1
        nbytes = elements * DTYPE_BITS[dtype] // 8 + draw(st.sampled_from([0, 0, 0, 1, -1]))
        begin = max(0, offset + draw(st.sampled_from([0, 0, 0, 2, -2])))
        header[name] = tensor(dtype, shape, begin, max(begin, begin + nbytes))
        offset = max(begin, begin + nbytes)
    return json.dumps(header).encode(), max(0, offset + draw(st.sampled_from([0, 0, 1, -1])))


@settings(max_examples=400, deadline=None)
@given(table=tensor_tables())
def test_well_typed_headers_agree_with_the_library(table: tuple[bytes, int]) -> None:
    header, data_size = table
    data = build(header, b"\0" * data_size)
    assert (validate_header(header, data_size=data_size) == []) == library_accepts(data)
