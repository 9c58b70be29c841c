"""ONNX against protobuf's own parse: every node and external-data location it sees is reported.

The scanner reads ONNX's protobuf wire format itself, walking only the fields that hold nodes and
tensors. The oracle is the parse that loaders do (`onnx.load_model_from_string`, protobuf), walked
generically: every message of type NodeProto or TensorProto anywhere in the model, whatever field
holds it (graphs in attributes, functions, training info, sparse tensors, attribute defaults).
Hypothesis places a custom-domain node and a tensor whose external data leaves the folder in each
such place, merges messages (a protobuf message written twice is one message, repeated fields
appended and scalars last-wins), and overwrites bytes. Whenever the parse holds the hostile node
or location, the scanner must report it or refuse the file (`ONNX-MALFORMED`). CI runs
ONNX_EXAMPLES (default 100); `ONNX_EXAMPLES=5000` runs a longer campaign.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.onnx import STANDARD_DOMAINS, OnnxScanner

EXAMPLES = int(os.environ.get("ONNX_EXAMPLES", "100"))
ESCAPE = "../../../etc/passwd"
CUSTOM = ("evil.ops", "Run")
PLACES = [
    "initializer",
    "sparse-initializer",
    "attribute-t",
    "attribute-tensors",
    "attribute-sparse-tensor",
    "attribute-sparse-tensors",
    "subgraph",
    "function-node",
    "function-attribute-default",
    "training-info",
]


def _messages(message: Any) -> Iterator[Any]:
    """Every message inside `message`, depth first, by protobuf's descriptors."""
    yield message
    for descriptor, value in message.ListFields():
        if descriptor.type != descriptor.TYPE_MESSAGE:
            continue
        values = [value] if hasattr(value, "ListFields") else value  # one message, or repeated
        for inner in values:
            yield from _messages(inner)


def _text(value: str | bytes) -> str:
    """proto2 gives a string field that is not UTF-8 as bytes; the scanner reads it replaced."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def protobuf_view(data: bytes) -> tuple[set[tuple[str, str]], set[str]] | None:
    """Nodes (domain, op) and external locations the protobuf parse holds; None if it fails."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, RuntimeError, ValueError):
        return None
    nodes, locations = set(), set()
    for message in _messages(model):
        if isinstance(message, onnx.NodeProto):
            nodes.add((_text(message.domain), _text(message.op_type)))
        elif isinstance(message, onnx.TensorProto):
            entries = {_text(e.key): _text(e.value) for e in message.external_data}
            if message.data_location == onnx.TensorProto.EXTERNAL and "location" in entries:
                locations.add(entries["location"])
    return nodes, locations


def scan(data: bytes) -> list[Finding]:
    ctx = ScanContext(path="model.onnx", format=FileFormat.ONNX)
    return list(OnnxScanner().scan(BytesScanStream(data), ctx))


def _hostile_tensor(name: str = "w") -> Any:
    from onnx import TensorProto, numpy_helper

    tensor = numpy_helper.from_array(np.ones((2,), dtype=np.float32), name=name)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", ESCAPE), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _sparse(tensor: Any) -> Any:
    from onnx import helper, numpy_helper

    indices = numpy_helper.from_array(np.array([0, 1], dtype=np.int64), name="i")
    return helper.make_sparse_tensor(tensor, indices, [2])


def build(place: str) -> bytes:
    """A small model with the hostile node or tensor at `place`."""
    from onnx import AttributeProto, TensorProto, helper

    custom = helper.make_node(CUSTOM[1], ["x"], ["c"], domain=CUSTOM[0])
    nodes: list[Any] = [helper.make_node("Identity", ["x"], ["y"])]
    initializers: list[Any] = []
    sparse: list[Any] = []
    functions: list[Any] = []
    training: list[Any] = []
    if place == "initializer":
        initializers.append(_hostile_tensor())
    elif place == "sparse-initializer":
        sparse.append(_sparse(_hostile_tensor()))
    elif place.startswith("attribute-"):
        node = helper.make_node("Constant", [], ["k"])
        attribute = node.attribute.add()
        attribute.name = "value"
        kind = place.removeprefix("attribute-")
        if kind == "t":
            attribute.type = AttributeProto.TENSOR
            attribute.t.CopyFrom(_hostile_tensor())
        elif kind == "tensors":
            attribute.type = AttributeProto.TENSORS
            attribute.tensors.append(_hostile_tensor())
        elif kind == "sparse-tensor":
            attribute.type = AttributeProto.SPARSE_TENSOR
            attribute.sparse_tensor.CopyFrom(_sparse(_hostile_tensor()))
        else:
            attribute.type = AttributeProto.SPARSE_TENSORS
            attribute.sparse_tensors.append(_sparse(_hostile_tensor()))
        nodes.append(node)
    elif place == "subgraph":
        out = [helper.make_tensor_value_info("c", TensorProto.FLOAT, [2])]
        branch = helper.make_graph([custom], "b", [], out, initializer=[_hostile_tensor("v")])
        nodes.append(helper.make_node("If", ["x"], ["c"], then_branch=branch, else_branch=branch))
    elif place.startswith("function-"):
        body = (
            [custom] if place == "function-node" else [helper.make_node("Identity", ["a"], ["b"])]
        )
        function = helper.make_function("local", "F", ["a"], ["b"], body, [])
        if place == "function-attribute-default":
            default = helper.make_attribute("k", _hostile_tensor())
            function.attribute_proto.append(default)
        functions.append(function)
        nodes.append(helper.make_node("F", ["x"], ["f"], domain="local"))
    elif place == "training-info":
        inner = helper.make_graph([custom], "t", [], [], initializer=[_hostile_tensor("t")])
        training.append(helper.make_training_info(inner, [], None, []))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=initializers,
        sparse_initializer=sparse,
    )
    model = helper.make_model(graph, functions=functions)
    model.training_info.extend(training)
    return bytes(model.SerializeToString())


def _note(what: str) -> None:
    if currently_in_test_context():
        event(what)


def check(data: bytes) -> None:
    view = protobuf_view(data)
    if view is None:
        _note("protobuf rejects the file")
        return
    nodes, locations = view
    findings = scan(data)
    codes = {f.code for f in findings}
    if "ONNX-MALFORMED" in codes:
        _note("scanner refuses the file")
        return
    evidence = {f.evidence for f in findings}
    local = {(d, n) for d, n in nodes if d == "local"}  # calls of the model's own function
    for domain, op in nodes - local:
        if domain not in STANDARD_DOMAINS:
            _note("custom node in the parse")
            assert f"{domain}::{op}" in evidence, (domain, op, sorted(codes))
    if ESCAPE in locations:
        _note("escaping location in the parse")
        assert "ONNX-EXTERNAL-DATA-ESCAPE" in codes, sorted(codes)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    places=st.lists(st.sampled_from(PLACES), min_size=1, max_size=2),
    edits=st.lists(st.tuples(st.integers(0, 4095), st.binary(min_size=1, max_size=4)), max_size=3),
)
def test_what_protobuf_parses_is_reported(
    places: list[str], edits: list[tuple[int, bytes]]
) -> None:
    # Concatenated serialisations parse as one merged message.
    raw = bytearray(b"".join(build(place) for place in places))
    for at, value in edits:
        at %= len(raw)
        raw[at : at + len(value)] = value[: len(raw) - at]
    check(bytes(raw))


def test_each_place_alone_is_reported() -> None:
    for place in PLACES:
        data = build(place)
        assert protobuf_view(data) is not None, place
        check(data)
