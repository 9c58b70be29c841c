"""The fingerprint's faster code computes what the plain code it replaced computed, bit for bit.

Each helper sped up for cost (issue 18) has its plain form kept here; a fingerprint of generated
weights is made once with the shipped code and once with the plain forms patched in, in the
same run, and the two serialisations must be equal byte for byte. A change that moves one value
of one profile fails this test: such a change must bump `FINGERPRINT_VERSION` instead.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks import lineage_models as lm
from tests.lineage.conftest import KEY
from verifier.lineage import fingerprint as fingerprint_module
from verifier.lineage import weights as weights_module
from verifier.lineage.fingerprint import (
    LineageKey,
    canonical_name,
    fingerprint_gguf,
    fingerprint_safetensors,
)
from verifier.lineage.weights import StoredTensor, stored, widen

#: Wider than `UNITS` (128) on both sides of the FFN, so units are really chosen and gathered.
WIDE = lm.Arch(vocab=600, hidden=160, layers=2, heads=2, ffn=320)


def _plain_columns(tensor: StoredTensor, ids: Any) -> Any:
    """Selected columns as gathered before: indexing, not `np.take`."""
    raw = stored(tensor)
    if tensor.dtype != "Q8_0":
        return widen(raw[:, ids], tensor.dtype)
    needed, where = np.unique(ids // 32, return_inverse=True)
    decoded = widen(raw[:, needed], tensor.dtype).reshape(raw.shape[0], len(needed), 32)
    return np.ascontiguousarray(decoded[:, where, ids % 32])


def _plain_matrix_class(key: LineageKey, name: str) -> int:
    """The keyed hash of a name, its key derived anew for every name as before."""
    derived = hmac.digest(key.secret, b"verifier-lineage/matrices", "sha256")
    digest = hashlib.blake2b(name.encode(), key=derived, digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _patch_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint_module, "columns", _plain_columns)
    monkeypatch.setattr(weights_module, "columns", _plain_columns)
    monkeypatch.setattr(LineageKey, "matrix_class", _plain_matrix_class)
    # Not kept from one call to the next.
    monkeypatch.setattr(LineageKey, "anchor_ids", lambda k, n: k._anchor_ids(_bound(n)))
    monkeypatch.setattr(LineageKey, "selectors", lambda k, n: k._selectors(n))
    monkeypatch.setattr(fingerprint_module, "canonical_name", canonical_name.__wrapped__)


def _bound(vocab_size: int) -> int:
    return 1 << (max(vocab_size, 2).bit_length() - 1)


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("unchanged")
    state = lm.base(WIDE, seed=11)
    found = {
        name: lm.save(state, work / name, dtype=dtype) / "model.safetensors"
        for name, dtype in (
            ("f32", torch.float32),
            ("f16", torch.float16),
            ("bf16", torch.bfloat16),
        )
    }
    found["q8_0"] = lm.save_gguf(state, work / "q8_0", quantise="Q8_0") / "model.gguf"
    return found


@pytest.mark.parametrize("kind", ["f32", "f16", "bf16", "q8_0"])
def test_fingerprint_is_the_one_the_plain_code_computes(
    kind: str, wide_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    make = fingerprint_gguf if kind == "q8_0" else fingerprint_safetensors
    path = wide_models[kind]
    # Twice with the shipped code (the second from what it keeps per process), then plain.
    shipped = [make([path], key=KEY).to_bytes() for _ in range(2)]
    other_key = LineageKey(bytes(range(1, 33)))
    shipped_other = make([path], key=other_key).to_bytes()
    with monkeypatch.context() as patched:
        _patch_plain(patched)
        plain = make([path], key=KEY).to_bytes()
        plain_other = make([path], key=other_key).to_bytes()
    assert shipped[0] == shipped[1] == plain
    assert shipped_other == plain_other != plain
