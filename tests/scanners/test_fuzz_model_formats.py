"""Mutated HDF5, ONNX and SavedModel files: findings, never a crash (bounded examples)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus.keras_samples import h5_with_config
from benchmarks.corpus.onnx_samples import onnx_model
from benchmarks.corpus.savedmodel_samples import saved_model
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.keras import Hdf5Scanner
from verifier.scanners.onnx import OnnxScanner
from verifier.scanners.savedmodel import SavedModelScanner

LAMBDA = {"class_name": "Lambda", "config": {"name": "l", "function": ["AAAA", None, None]}}
CASES: dict[str, tuple[Callable[[], bytes], Callable[[BytesScanStream], Iterator[Finding]]]] = {
    "hdf5": (
        lambda: h5_with_config({"class_name": "Sequential", "config": {"layers": [LAMBDA]}}),
        lambda s: Hdf5Scanner().scan(s, ScanContext("m.h5", FileFormat.HDF5)),
    ),
    "onnx": (
        lambda: onnx_model(location="../x", custom=("org.x", "Op"), in_subgraph=True),
        lambda s: OnnxScanner().scan(s, ScanContext("m.onnx", FileFormat.ONNX)),
    ),
    "savedmodel": (
        lambda: saved_model(("Const", "PyFunc"), ("ReadFile",)),
        lambda s: SavedModelScanner().scan(s, ScanContext("m.pb", FileFormat.TF_SAVEDMODEL)),
    ),
}
_BASES = {name: build() for name, (build, _) in CASES.items()}


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutations_never_crash(name: str, data: st.DataObject) -> None:
    raw = bytearray(_BASES[name])
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    mutated = bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw)
    findings = list(CASES[name][1](BytesScanStream(mutated)))
    assert all(isinstance(f, Finding) for f in findings)
