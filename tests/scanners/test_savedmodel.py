"""TensorFlow SavedModel: identified by content, ops that run Python or touch files."""

from __future__ import annotations

import pytest

from benchmarks.corpus.onnx_samples import onnx_model
from benchmarks.corpus.savedmodel_samples import saved_model
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.savedmodel import SavedModelScanner
from verifier.scanners.sniff import identify

CTX = ScanContext(path="saved_model.pb", format=FileFormat.TF_SAVEDMODEL)
PLAIN = ("Placeholder", "MatMul", "SaveV2", "RestoreV2")


def scan(data: bytes) -> list[tuple[str, str | None]]:
    findings: list[Finding] = list(SavedModelScanner().scan(BytesScanStream(data), CTX))
    return [(f.code, f.evidence) for f in findings]


def test_identified_by_content_and_not_confused_with_onnx() -> None:
    data = saved_model(PLAIN)
    assert identify(data, len(data)) is FileFormat.TF_SAVEDMODEL
    model = onnx_model()
    assert identify(model, len(model)) is FileFormat.ONNX


def test_checkpoint_ops_are_not_file_io() -> None:
    assert scan(saved_model(PLAIN, ("Relu",))) == []


@pytest.mark.parametrize("where", ["graph", "function"])
@pytest.mark.parametrize(
    ("op", "code"),
    [
        ("PyFunc", "TF-SAVEDMODEL-PYFUNC"),
        ("EagerPyFunc", "TF-SAVEDMODEL-PYFUNC"),
        ("PyFuncStateless", "TF-SAVEDMODEL-PYFUNC"),
        ("ReadFile", "TF-SAVEDMODEL-FILE-IO"),
        ("WriteFile", "TF-SAVEDMODEL-FILE-IO"),
        ("MatchingFiles", "TF-SAVEDMODEL-FILE-IO"),
    ],
)
def test_dangerous_ops_anywhere(where: str, op: str, code: str) -> None:
    data = saved_model((*PLAIN, op)) if where == "graph" else saved_model(PLAIN, (op,))
    assert scan(data) == [(code, op)]


@pytest.mark.parametrize("cut", [5, 20, 60])
def test_truncated_graph_is_malformed(cut: int) -> None:
    data = saved_model((*PLAIN, "PyFunc"))
    assert "TF-SAVEDMODEL-MALFORMED" in [c for c, _ in scan(data[:cut])]
