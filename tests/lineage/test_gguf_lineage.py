"""Weight fingerprints from GGUF: the reader against `gguf.GGUFReader`, attribution across formats.

The reference reader runs in one spawned child whose address space is capped, as in
tests/scanners/test_gguf_differential.py: GGUFReader builds Python objects per array element,
so a mutated count can make it allocate without bound.
"""

from __future__ import annotations

import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import lineage_models as lm
from tests.capped_child import CappedChild
from tests.lineage.conftest import ARCH, KEY
from verifier.lineage.compare import compare
from verifier.lineage.fingerprint import (
    Fingerprint,
    FingerprintError,
    fingerprint_gguf,
    fingerprint_safetensors,
)
from verifier.lineage.weights import GgufWeights, stored, widen


def _reference_tensors_here(data: bytes) -> dict[str, np.ndarray] | None:
    """Every tensor GGUFReader reads, dequantised by the `gguf` package (capped child only)."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        path.write_bytes(data)
        try:
            reader = GGUFReader(path)
            found = {
                t.name: np.array(dequantize(t.data, t.tensor_type), dtype=np.float32)
                for t in reader.tensors
            }
        except Exception:  # any refusal, MemoryError too: the loader reads nothing
            return None
        del reader
    return found


_oracle = CappedChild()


def reference_tensors(data: bytes) -> dict[str, np.ndarray] | None:
    """What GGUFReader decodes from `data`, or None when it refuses (or dies in the child)."""
    return _oracle.run(_reference_tensors_here, data)


@pytest.fixture(scope="module", autouse=True)
def _stop_oracle() -> Iterator[None]:
    yield
    _oracle.close()


def _write(tensors: dict[str, tuple[np.ndarray, str]]) -> bytes:
    """A GGUF file written by the `gguf` package, each tensor in its ggml type."""
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        writer = GGUFWriter(str(path), arch="llama")
        for name, (values, type_name) in tensors.items():
            kind = GGMLQuantizationType[type_name]
            if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
                writer.add_tensor(
                    name, values.astype(np.dtype(type_name.lower().replace("f", "float")))
                )
            else:
                writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def _ours(data: bytes, folder: Path) -> dict[str, np.ndarray]:
    path = folder / "ours.gguf"
    path.write_bytes(data)
    with GgufWeights([path]) as weights:
        return {
            name: widen(stored(t), t.dtype).copy()
            for name, t in weights.tensors.items()
            if len(t.shape) == 2
        }


@st.composite
def gguf_models(draw: st.DrawFn) -> dict[str, tuple[np.ndarray, str]]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tensors = {}
    for i in range(draw(st.integers(1, 4))):
        rows = draw(st.integers(1, 9))
        cols = 32 * draw(st.integers(1, 3))
        kind = draw(st.sampled_from(["F32", "F16", "BF16", "Q8_0"]))
        values = rng.standard_normal((rows, cols)) * draw(st.sampled_from([1e-3, 1.0, 300.0]))
        tensors[f"blk.{i}.w.weight"] = (values.astype(np.float32), kind)
    return tensors


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gguf_models())
def test_gguf_reader_decodes_what_gguf_reader_dequantises(
    tensors: dict[str, tuple[np.ndarray, str]],
) -> None:
    """Differential: every matrix our reader decodes equals, value for value, what the `gguf`
    package's reader and dequantiser give (F32, F16, BF16, Q8_0)."""
    data = _write(tensors)
    expected = reference_tensors(data)
    assert expected is not None
    with tempfile.TemporaryDirectory() as folder:
        ours = _ours(data, Path(folder))
    assert set(ours) == set(expected)
    for name, values in ours.items():
        np.testing.assert_array_equal(values, expected[name].reshape(values.shape), err_msg=name)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, lm.State]]:
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("gguf-lineage")
    one, two = lm.base(ARCH, seed=21), lm.base(ARCH, seed=22)
    return work, {"one": one, "two": two, "tuned": lm.fine_tune(ARCH, one, steps=15, seed=23)}


@pytest.mark.parametrize("quantise", ["F32", "F16", "BF16", "Q8_0"])
def test_gguf_copy_is_attributed_to_its_safetensors_base(
    bases: tuple[Path, dict[str, lm.State]], quantise: str
) -> None:
    work, states = bases
    prints: dict[str, Fingerprint] = {
        name: fingerprint_safetensors(
            [lm.save(states[name], work / name) / "model.safetensors"], key=KEY
        )
        for name in ("one", "two")
    }
    for name in ("one", "tuned"):
        folder = lm.save_gguf(states[name], work / f"{name}-{quantise}", quantise=quantise)
        gguf_print = fingerprint_gguf([folder / "model.gguf"], key=KEY)
        assert compare(gguf_print, prints["one"]).derived, (name, quantise)
        assert not compare(gguf_print, prints["two"]).derived, (name, quantise)


def test_gguf_of_unquantisable_types_is_refused(bases: tuple[Path, dict[str, lm.State]]) -> None:
    work, states = bases
    folder = lm.save_gguf(states["one"], work / "q4", quantise="Q4_0")
    with pytest.raises(FingerprintError, match="Q4_0 is not fingerprinted"):
        fingerprint_gguf([folder / "model.gguf"], key=KEY)


def test_gguf_table_the_scanner_refuses_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 10**9, 0))
    with pytest.raises(FingerprintError, match="implausible"):
        fingerprint_gguf([path], key=KEY)
