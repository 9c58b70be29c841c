"""ONNX samples built with the onnx package: external data that escapes, custom operators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.corpus import benign, technique


def onnx_model(
    *,
    location: str | None = None,
    custom: tuple[str, str] | None = None,
    in_subgraph: bool = False,
) -> bytes:
    """A small Add model; optionally an external-data initializer or a custom-domain node."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2,), dtype=np.float32), name="w")
    if location is not None:
        weight.ClearField("raw_data")
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", "8")):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    nodes: list[Any] = [helper.make_node("Add", ["x", "w"], ["y"])]
    opsets = [helper.make_opsetid("", 17)]
    if custom is not None:
        domain, op = custom
        opsets.append(helper.make_opsetid(domain, 1))
        inner = helper.make_node(op, ["y"], ["z"], domain=domain)
        if in_subgraph:
            branch = helper.make_graph(
                [inner], "then", [], [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])]
            )
            nodes.append(
                helper.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=branch)
            )
        else:
            nodes.append(inner)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("z" if custom else "y", TensorProto.FLOAT, [2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=opsets, producer_name="verifier-tests")
    return bytes(model.SerializeToString())


@technique(
    "onnx-external-data-traversal",
    family="onnx",
    filename="model.onnx",
    expect="ONNX-EXTERNAL-DATA-ESCAPE",
    advisory="CVE-2022-25882",
)
def traversal(m: Path) -> bytes:
    """An initializer whose external data is ../../../etc/passwd."""
    return onnx_model(location="../../../etc/passwd")


@technique(
    "onnx-external-data-absolute",
    family="onnx",
    filename="model.onnx",
    expect="ONNX-EXTERNAL-DATA-ESCAPE",
)
def absolute(m: Path) -> bytes:
    """An initializer whose external data is an absolute path."""
    return onnx_model(location="/root/.ssh/id_rsa")


@technique(
    "onnx-custom-operator", family="onnx", filename="model.onnx", expect="ONNX-CUSTOM-OPERATOR"
)
def custom_op(m: Path) -> bytes:
    """A node from a custom domain: needs a native operator library to run."""
    return onnx_model(custom=("com.attacker.ops", "RunShell"))


@technique(
    "onnx-custom-operator-in-subgraph",
    family="onnx",
    filename="model.onnx",
    expect="ONNX-CUSTOM-OPERATOR",
)
def custom_op_subgraph(m: Path) -> bytes:
    """The custom node hides in an If branch."""
    return onnx_model(custom=("com.attacker.ops", "RunShell"), in_subgraph=True)


@benign("onnx-plain-add", family="onnx", filename="model.onnx")
def plain(m: Path) -> bytes:
    """A plain ONNX model (standard domain only)."""
    return onnx_model()


@benign("onnx-external-data-beside", family="onnx")
def beside(m: Path) -> dict[str, bytes]:
    """External data in a file beside the model."""
    return {"model.onnx": onnx_model(location="weights/w.bin"), "weights/w.bin": b"\x00" * 8}


@benign("onnx-contrib-operator", family="onnx", filename="model.onnx")
def contrib(m: Path) -> bytes:
    """An ONNX Runtime contrib operator (com.microsoft), implemented by the runtime."""
    return onnx_model(custom=("com.microsoft", "Gelu"))
