"""The pickle scanner: imports come from opcodes, never from bytes; errors never hide calls."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import samples
from tests.scanners.streams_for_tests import reader_for
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext
from verifier.scanners.pickle import PickleScanner
from verifier.scanners.pickle_globals import GlobalClass, classify


def _scan(tmp_path: Path, data: bytes) -> list[Finding]:
    path = tmp_path / "sample.pkl"
    path.write_bytes(data)
    with reader_for(path, chunk_size=7) as reader:
        return list(PickleScanner().scan(reader, ScanContext("sample.pkl", FileFormat.PICKLE)))


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


@pytest.mark.parametrize(
    ("build", "evidence"),
    [
        (samples.os_system, "os.system"),
        (samples.builtins_eval, "builtins.eval"),
        (samples.os_system_protocol0, "os.system"),
        (samples.stack_global_via_memo, "os.system"),
        (samples.dotted_stack_global, "shlex.os.system"),
    ],
)
def test_dangerous_imports_are_critical(
    tmp_path: Path, marker_dir: Path, build: object, evidence: str
) -> None:
    findings = _scan(tmp_path, build(marker_dir))  # type: ignore[operator]
    dangerous = [f for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert [f.evidence for f in dangerous] == [evidence]
    assert dangerous[0].severity is Severity.CRITICAL
    assert dangerous[0].offset is not None


def test_truncated_pickle_reports_the_import_and_the_error(
    tmp_path: Path, marker_dir: Path
) -> None:
    findings = _scan(tmp_path, samples.truncated(samples.os_system(marker_dir)))
    assert _codes(findings) == {"PICKLE-DANGEROUS-GLOBAL", "PICKLE-MALFORMED"}


def test_payload_before_a_broken_stream_is_still_reported(tmp_path: Path, marker_dir: Path) -> None:
    # nullifAI: the unpickler runs the REDUCE before it reaches the garbage.
    findings = _scan(tmp_path, samples.payload_then_broken(marker_dir))
    assert "PICKLE-DANGEROUS-GLOBAL" in _codes(findings)
    malformed = [f for f in findings if f.code == "PICKLE-MALFORMED"]
    assert malformed and malformed[0].severity is Severity.HIGH


def test_strings_that_look_like_imports_are_data(tmp_path: Path) -> None:
    findings = _scan(tmp_path, samples.benign_vocabulary())
    assert not [f for f in findings if f.severity.at_least(Severity.LOW)]


def test_unknown_import_is_high_and_named(tmp_path: Path, marker_dir: Path) -> None:
    findings = _scan(tmp_path, samples.global_call("mypackage.models", "Net", "x"))
    unknown = [f for f in findings if f.code == "PICKLE-UNKNOWN-GLOBAL"]
    assert [(f.evidence, f.severity) for f in unknown] == [("mypackage.models.Net", Severity.HIGH)]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_numpy_arrays_import_only_allowlisted_callables(tmp_path: Path, protocol: int) -> None:
    findings = _scan(tmp_path, pickle.dumps(np.arange(6).reshape(2, 3), protocol=protocol))
    assert _codes(findings) == {"PICKLE-IMPORTS"}
    assert all(f.severity is Severity.INFO for f in findings)


def test_legacy_torch_data_pickle_is_clean(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    state = {"w": torch.zeros(2, 2, dtype=torch.bfloat16), "b": torch.ones(2)}
    pickle.dump(state, buffer, protocol=2)  # tensors reduce through torch._utils
    findings = _scan(tmp_path, buffer.getvalue())
    assert _codes(findings) == {"PICKLE-IMPORTS"}, findings


def test_concatenated_pickles_are_each_analysed(tmp_path: Path, marker_dir: Path) -> None:
    data = pickle.dumps([1, 2], protocol=2) + samples.os_system(marker_dir)
    codes = _codes(_scan(tmp_path, data))
    assert {"PICKLE-CONCATENATED", "PICKLE-DANGEROUS-GLOBAL"} <= codes


def test_trailing_bytes_are_reported(tmp_path: Path) -> None:
    codes = _codes(_scan(tmp_path, pickle.dumps([1], protocol=2) + b"trailing junk"))
    assert "PICKLE-TRAILING-DATA" in codes


def test_large_binary_payloads_are_skipped_not_kept(tmp_path: Path) -> None:
    blob = pickle.dumps({"data": b"\x00" * 3_000_000}, protocol=4)
    findings = _scan(tmp_path, blob)
    assert not [f for f in findings if f.severity.at_least(Severity.LOW)]


@pytest.mark.parametrize(
    ("module", "name", "expected"),
    [
        ("torch._utils", "_rebuild_tensor_v2", GlobalClass.SAFE),
        ("collections", "OrderedDict", GlobalClass.SAFE),
        ("__builtin__", "set", GlobalClass.SAFE),
        ("posix", "system", GlobalClass.DANGEROUS),
        ("subprocess", "Popen", GlobalClass.DANGEROUS),
        ("__builtin__", "eval", GlobalClass.DANGEROUS),
        ("runpy", "run_path", GlobalClass.DANGEROUS),
        ("pip", "main", GlobalClass.DANGEROUS),
        ("torch", "load", GlobalClass.DANGEROUS),
        ("builtins", "getattr", GlobalClass.DANGEROUS),
        ("collections", "OrderedDict.__class__", GlobalClass.DANGEROUS),
        ("sklearn.linear_model", "LogisticRegression", GlobalClass.UNKNOWN),
    ],
)
def test_classification(module: str, name: str, expected: GlobalClass) -> None:
    assert classify(module, name) is expected
