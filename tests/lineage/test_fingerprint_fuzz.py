"""The fingerprint's readers under hostile files: a fingerprint or a clean refusal, nothing else.

Hypothesis starts from a small valid model (safetensors, or GGUF written by the `gguf` package)
and breaks it: header entries with wrong dtypes, shapes (negative, huge, not lists, not 2-D),
offsets outside the file or reversed, headers that are not objects, header lengths past the
file, truncation, and bytes overwritten anywhere in a GGUF header and tensor table. Whatever
the file, the reader returns a fingerprint or raises `FingerprintError` (which a scan reports as
`LINEAGE-UNVERIFIABLE`): any other exception, such as numpy refusing a view that would read
past the memory map, fails the test. CI runs FUZZ_EXAMPLES (default 150) per property.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.lineage.conftest import KEY
from verifier.lineage.fingerprint import (
    Fingerprint,
    FingerprintError,
    fingerprint_gguf,
    fingerprint_safetensors,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_RNG = np.random.default_rng(0)
_TENSORS = {
    "model.embed_tokens.weight": _RNG.standard_normal((80, 16)).astype(np.float32),
    "model.layers.0.self_attn.q_proj.weight": _RNG.standard_normal((16, 16)).astype(np.float32),
    "model.layers.0.mlp.up_proj.weight": _RNG.standard_normal((32, 16)).astype(np.float16),
    "model.layers.0.mlp.down_proj.weight": _RNG.standard_normal((16, 32)).astype(np.float16),
}


def _safetensors_parts() -> tuple[dict[str, Any], bytes]:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, values in _TENSORS.items():
        raw = values.tobytes()
        dtype = "F32" if values.dtype == np.float32 else "F16"
        header[name] = {
            "dtype": dtype,
            "shape": list(values.shape),
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    return header, data


def _safetensors(header: object, data: bytes, *, length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    return struct.pack("<Q", len(encoded) if length is None else length) + encoded + data


_VALUES = st.one_of(
    st.integers(-(2**65), 2**65),
    st.sampled_from([0, 1, 16, 80, 2**31, 2**63 - 1, 2**64, -1]),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.none(),
    st.booleans(),
)


@st.composite
def broken_safetensors(draw: st.DrawFn) -> bytes:
    header, data = _safetensors_parts()
    name = draw(st.sampled_from(sorted(_TENSORS)))
    entry = header[name]
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "entry", "header", "length"]))
    if field == "dtype":
        entry["dtype"] = draw(
            st.one_of(
                st.sampled_from(["F32", "F16", "BF16", "F64", "Q8_0", "I8", "F8_E4M3", ""]),
                _VALUES,
            )
        )
    elif field == "shape":
        entry["shape"] = draw(st.one_of(st.lists(_VALUES, max_size=4), _VALUES))
    elif field == "data_offsets":
        entry["data_offsets"] = draw(st.one_of(st.lists(_VALUES, max_size=3), _VALUES))
    elif field == "entry":
        header[name] = draw(st.one_of(_VALUES, st.dictionaries(st.text(max_size=3), _VALUES)))
    elif field == "header":
        return _safetensors(draw(st.one_of(_VALUES, st.lists(_VALUES, max_size=3))), data)
    else:
        length = draw(st.integers(0, 2**64 - 1))
        return _safetensors(header, data, length=length)
    raw = _safetensors(header, data)
    cut = draw(st.one_of(st.none(), st.integers(0, len(raw))))
    return raw if cut is None else raw[:cut]


def _fingerprint_or_refusal(path: Path, read: Any) -> None:
    try:
        result = read([path], key=KEY)
    except FingerprintError:
        return
    assert isinstance(result, Fingerprint)


@FUZZ
@given(broken_safetensors())
def test_broken_safetensors_are_fingerprinted_or_refused(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.safetensors"
        path.write_bytes(raw)
        _fingerprint_or_refusal(path, fingerprint_safetensors)


def _gguf_bytes() -> bytes:
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    renamed = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.layers.0.self_attn.q_proj.weight": "blk.0.attn_q.weight",
        "model.layers.0.mlp.up_proj.weight": "blk.0.ffn_up.weight",
        "model.layers.0.mlp.down_proj.weight": "blk.0.ffn_down.weight",
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        writer = GGUFWriter(str(path), arch="llama")
        writer.add_string("tokenizer.ggml.model", "llama")
        for name, values in _TENSORS.items():
            if values.shape[1] % 32 == 0:
                kind = GGMLQuantizationType.Q8_0
                writer.add_tensor(renamed[name], quantize(values, kind), raw_dtype=kind)
            else:
                writer.add_tensor(renamed[name], values)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


_GGUF = _gguf_bytes()


@st.composite
def broken_gguf(draw: st.DrawFn) -> bytes:
    raw = bytearray(_GGUF)
    # The header and tables lie before the first tensor's data: overwrite there.
    table_end = min(len(raw), 1024)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, table_end - 1))
        width = draw(st.sampled_from([1, 4, 8]))
        value = draw(st.integers(0, 2 ** (8 * width) - 1))
        raw[at : at + width] = value.to_bytes(width, "little")[: len(raw) - at]
    cut = draw(st.one_of(st.none(), st.integers(0, len(raw))))
    return bytes(raw if cut is None else raw[:cut])


def test_the_unbroken_gguf_is_fingerprinted(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(_GGUF)
    assert fingerprint_gguf([path], key=KEY).hidden_size == 16


@FUZZ
@given(broken_gguf())
def test_broken_gguf_is_fingerprinted_or_refused(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        path.write_bytes(raw)
        _fingerprint_or_refusal(path, fingerprint_gguf)


@pytest.mark.parametrize(
    ("shape", "offsets"),
    [
        ([2**40, 0], [0, 0]),  # rows of nothing: the bytes match the shape
        ([2**33, 1], [0, 2]),  # rows past the cap, and the bytes do not match
        ([2**20, 1], [0, 2]),  # under the cap: the bytes do not match
    ],
)
def test_an_embedding_that_declares_huge_rows_is_refused_before_anything_is_sized(
    shape: list[int], offsets: list[int], tmp_path: Path
) -> None:
    # Hypothesis found it: anchors drawn for a vocabulary of 2^40 rows made the reader ask for
    # terabytes, and the process was killed for lack of memory.
    header, data = _safetensors_parts()
    header["model.embed_tokens.weight"] = {"dtype": "F16", "shape": shape, "data_offsets": offsets}
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors(header, data))
    with pytest.raises(FingerprintError):
        fingerprint_safetensors([path], key=KEY)


def test_a_vocabulary_past_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, data = _safetensors_parts()
    path = tmp_path / "model.safetensors"
    path.write_bytes(_safetensors(header, data))
    assert isinstance(fingerprint_safetensors([path], key=KEY), Fingerprint)
    monkeypatch.setattr("verifier.lineage.fingerprint.MAX_VOCABULARY", 64)  # 80 rows
    with pytest.raises(FingerprintError, match="not an embedding"):
        fingerprint_safetensors([path], key=KEY)
