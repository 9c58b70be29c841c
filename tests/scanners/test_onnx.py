"""ONNX: external data paths and custom operators, on models built with the onnx package."""

from __future__ import annotations

import pytest

from benchmarks.corpus.onnx_samples import onnx_model
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.onnx import OnnxScanner
from verifier.scanners.sniff import identify

CTX = ScanContext(path="model.onnx", format=FileFormat.ONNX)


def scan(data: bytes) -> list[Finding]:
    return list(OnnxScanner().scan(BytesScanStream(data), CTX))


def test_plain_model_is_identified_and_clean() -> None:
    data = onnx_model()
    assert identify(data, len(data)) is FileFormat.ONNX
    assert scan(data) == []


@pytest.mark.parametrize(
    "location",
    ["../../etc/passwd", "/etc/passwd", "a/../../b", "..", "C:\\Windows\\win.ini", "\\\\host\\s"],
)
def test_locations_outside_the_folder_are_critical(location: str) -> None:
    [finding] = scan(onnx_model(location=location))
    assert finding.code == "ONNX-EXTERNAL-DATA-ESCAPE"
    assert finding.severity.value == "critical"
    assert finding.evidence == location


@pytest.mark.parametrize("location", ["w.bin", "weights/w.bin", "a/../w.bin"])
def test_locations_inside_the_folder_are_listed(location: str) -> None:
    [finding] = scan(onnx_model(location=location))
    assert (finding.code, finding.severity.value) == ("ONNX-EXTERNAL-DATA", "info")


@pytest.mark.parametrize("in_subgraph", [False, True])
def test_custom_domain_is_flagged_wherever_it_is(in_subgraph: bool) -> None:
    findings = scan(onnx_model(custom=("org.example", "Magic"), in_subgraph=in_subgraph))
    assert [(f.code, f.evidence) for f in findings] == [
        ("ONNX-CUSTOM-OPERATOR", "org.example::Magic")
    ]


def test_model_local_function_is_not_custom() -> None:
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_node("Relu", ["a"], ["b"])
    function = helper.make_function(
        "local.fns", "MyRelu", ["a"], ["b"], [body], [helper.make_opsetid("", 17)]
    )
    node = helper.make_node("MyRelu", ["x"], ["y"], domain="local.fns")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local.fns", 1)],
    )
    onnx.checker.check_model(model)
    assert scan(model.SerializeToString()) == []


@pytest.mark.parametrize("cut", [3, 10, 40, 80])
def test_truncated_model_is_malformed(cut: int) -> None:
    data = onnx_model(location="../x")
    findings = scan(data[:cut])
    assert "ONNX-MALFORMED" in [f.code for f in findings]
