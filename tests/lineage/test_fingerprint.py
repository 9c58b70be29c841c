"""Weight fingerprints: derivatives (even permuted) match their base, independent bases do not."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from benchmarks import lineage_models as lm
from tests.lineage.conftest import ARCH
from verifier.lineage.compare import compare
from verifier.lineage.fingerprint import (
    Fingerprint,
    FingerprintError,
    anchor_ids,
    fingerprint_safetensors,
)


def test_permuted_model_computes_the_same_function() -> None:
    state = lm.base(ARCH, seed=9)
    ids = lm.corpus(ARCH, 9, batch=2, length=8)
    original = lm.load(ARCH, state)(ids)
    permuted = lm.load(ARCH, lm.permute(ARCH, state, seed=1, residual=True))(ids)
    assert torch.allclose(original, permuted, atol=1e-4)


@pytest.mark.parametrize("name", ["tuned", "permuted", "int8", "resized", "bf16", "merged"])
def test_derivatives_are_attributed_to_their_base(
    family: dict[str, Fingerprint], name: str
) -> None:
    match = compare(family[name], family["one"])
    assert match.comparable
    assert match.derived, match


def test_independent_bases_are_not_attributed(family: dict[str, Fingerprint]) -> None:
    for name in ("one", "tuned", "permuted", "int8"):
        match = compare(family[name], family["two"])
        assert match.comparable
        assert not match.derived, (name, match)
    assert compare(family["merged"], family["two"]).derived


def test_the_null_is_calibrated_on_unrelated_weights(family: dict[str, Fingerprint]) -> None:
    unrelated = compare(family["one"], family["two"])
    assert abs(unrelated.z) < 5
    assert unrelated.p_value > 1e-4
    assert compare(family["permuted"], family["one"]).p_value < 1e-9


def test_serialisation_round_trips(family: dict[str, Fingerprint]) -> None:
    again = Fingerprint.from_bytes(family["one"].to_bytes())
    assert again.anchor_ids == family["one"].anchor_ids
    assert [m.name for m in again.matrices] == [m.name for m in family["one"].matrices]
    assert compare(again, family["one"]).derived


def test_unreadable_fingerprint_bytes_are_refused() -> None:
    with pytest.raises(FingerprintError):
        Fingerprint.from_bytes(b"not a fingerprint")


def test_anchor_ids_survive_small_vocabulary_resizes() -> None:
    assert anchor_ids(32_000) == anchor_ids(32_100)
    assert len(anchor_ids(32_000)) == 64
    assert all(i < 300 for i in anchor_ids(300))


def _write(path: Path, header: dict[str, object], data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_files_without_an_embedding_are_not_comparable(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    with pytest.raises(FingerprintError, match="embedding"):
        fingerprint_safetensors([_write(tmp_path / "m.safetensors", header, bytes(16))])


@pytest.mark.parametrize(
    "header",
    [
        {"embed_tokens.weight": {"dtype": "F32", "shape": [8, 2], "data_offsets": [0, 999]}},
        {"embed_tokens.weight": {"dtype": "F32", "shape": [8, 2], "data_offsets": [0, 16]}},
        {"embed_tokens.weight": {"dtype": "F32", "shape": "x", "data_offsets": [0, 64]}},
    ],
)
def test_malformed_files_raise_a_fingerprint_error(
    tmp_path: Path, header: dict[str, object]
) -> None:
    with pytest.raises(FingerprintError):
        fingerprint_safetensors([_write(tmp_path / "m.safetensors", header, bytes(64))])


def test_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    with pytest.raises(FingerprintError):
        fingerprint_safetensors([path])
