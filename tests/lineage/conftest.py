"""A tiny model family shared by the lineage tests (trained in seconds on the CPU)."""

from __future__ import annotations

import pytest
import torch

from benchmarks import lineage_models as lm
from verifier.lineage.fingerprint import Fingerprint, LineageKey, fingerprint_safetensors

ARCH = lm.Arch(vocab=320, hidden=32, layers=1, heads=2, ffn=96)
#: The tests' lineage key: fixed, so that a failure reproduces (a store makes a random one).
KEY = LineageKey(bytes(range(32)))


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Fingerprint]:
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("lineage")
    one, two = lm.base(ARCH, seed=1), lm.base(ARCH, seed=2)
    models = {
        "one": one,
        "two": two,
        "tuned": lm.fine_tune(ARCH, one, steps=15, seed=5),
        "permuted": lm.permute(ARCH, one, seed=3, residual=True),
        "int8": lm.int8_round_trip(one),
        "resized": lm.resize_embeddings(one, 40, seed=4),
        "merged": lm.merge(one, two),
    }
    prints = {
        name: fingerprint_safetensors([lm.save(state, work / name) / "model.safetensors"], key=KEY)
        for name, state in models.items()
    }
    prints["bf16"] = fingerprint_safetensors(
        [lm.save(one, work / "bf16", dtype=torch.bfloat16) / "model.safetensors"], key=KEY
    )
    return prints
