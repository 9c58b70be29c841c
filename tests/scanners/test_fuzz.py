"""Mutated inputs never crash a scanner: pickle, zip, npy, npz, safetensors, joblib, GGUF,
TorchScript.

Hypothesis mutates real files (byte edits, truncation, insertion); every scanner must return
findings, never raise. Example counts are small so the suite stays fast; run with
`--hypothesis-seed` or raise `FUZZ_EXAMPLES` for longer sessions.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scanners.streams import BytesScanStream
from verifier.scanners.interface import ScanContext, ScanLimitError
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))


def _torch_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": [1, 2.0, "x"]}, protocol=2))
        archive.writestr("archive/version", "3\n")
        archive.writestr("archive/data/0", bytes(32))
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(12, dtype=np.float32).reshape(3, 4))
    return buffer.getvalue()


def _npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=np.ones(4), b=np.array([1, "x"], dtype=object))
    return buffer.getvalue()


def _safetensors() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.ones((2, 3), dtype=np.float32)})


def _joblib() -> bytes:
    import zlib

    import joblib

    buffer = io.BytesIO()
    joblib.dump({"w": np.arange(20.0)}, buffer)
    return zlib.compress(buffer.getvalue())


def _gguf() -> bytes:
    import tempfile
    from pathlib import Path

    from benchmarks.corpus.gguf_files import write_gguf

    with tempfile.TemporaryDirectory() as folder:
        template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        return write_gguf(Path(folder) / "m.gguf", chat_template=template).read_bytes()


def _torchscript_zip() -> bytes:
    # The records torch.jit.save writes, by hand: a TorchScript class, its code, constants.
    code = (
        "class M(Module):\n  __parameters__ = []\n  training : bool\n"
        "  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        "    _0 = torch.add(x, torch.from_file('f', False, 4))\n    return _0\n"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "m/data.pkl",
            b"\x80\x02c__torch__\nM\nq\x00)\x81}(X\x08\x00\x00\x00trainingq\x01\x88ub.",
        )
        archive.writestr("m/code/__torch__.py", code)
        archive.writestr("m/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("m/version", "3\n")
    return buffer.getvalue()


SEEDS = {
    "pickle-p0": pickle.dumps({"a": (1, b"x", None)}, protocol=0),
    "pickle-p4": pickle.dumps({"k": [1.5, "y", {"z": True}]}, protocol=4),
    "pickle-call": b"\x80\x02cevil\nrun\n(X\x01\x00\x00\x00atR.",
    "torch-zip": _torch_zip(),
    "npy": _npy(),
    "npz": _npz(),
    "safetensors": _safetensors(),
    "joblib-zlib": _joblib(),
    "gguf": _gguf(),
    "torchscript-zip": _torchscript_zip(),
    "numpy-generator": pickle.dumps(np.random.default_rng(0), protocol=2),
    "rebuild-from-type": (
        b"\x80\x03ctorch._tensor\n_rebuild_from_type_v2\n(ctorch.storage\n_load_from_bytes\n"
        b"ctorch\nTensor\n(C\x0b\x80\x02]q\x00K\x01a.t}tR."
    ),
}

_edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), max_size=8)


def _mutate(seed: bytes, edits: list[tuple[int, int]], cut: int | None, insert: bytes) -> bytes:
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    if insert:
        at = (edits[0][0] if edits else 0) % (len(data) + 1)
        data[at:at] = insert
    if cut is not None:
        del data[cut % (len(data) + 1) :]
    return bytes(data)


@pytest.mark.parametrize("seed", sorted(SEEDS))
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(edits=_edits, cut=st.none() | st.integers(min_value=0), insert=st.binary(max_size=16))
def test_mutated_files_never_crash_a_scanner(
    seed: str, edits: list[tuple[int, int]], cut: int | None, insert: bytes
) -> None:
    data = _mutate(SEEDS[seed], edits, cut, insert)
    fmt = identify(data[:65536], len(data))
    scanner = scanner_for(fmt)
    if scanner is None:
        return
    try:
        findings = list(scanner.scan(BytesScanStream(data), ScanContext("fuzz", fmt)))
    except ScanLimitError:
        return  # a declared limit: reported as a finding by the pipeline
    assert all(f.code and f.severity for f in findings)
