"""ONNX: the model protobuf walked without the onnx package: external data paths and operators.

Tensor payloads are skipped. Every graph is visited (subgraphs of If/Loop/Scan attributes,
training graphs, model-local functions), because a path or an operator may hide in any of them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.protobuf import LENGTH, MAX_DEPTH, ProtobufError, WireReader
from verifier.scanners.references import EXTERNAL_DATA_NOTE

#: Most external data files noted for identification (the rest stay unidentified).
_MAX_NOTED = 100_000

#: Operator domains that ONNX runtimes implement themselves.
STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
    }
)


@dataclass
class _Model:
    operators: set[tuple[str, str]] = field(default_factory=set)
    functions: set[tuple[str, str]] = field(default_factory=set)
    locations: list[tuple[str, str]] = field(default_factory=list)  # (tensor, location)


class OnnxScanner(Scanner):
    """Walks ModelProto: graphs, nodes, attributes, tensors and functions."""

    formats = frozenset({FileFormat.ONNX})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for external data locations and custom operator domains.

        Raises:
            ScanLimitError: never; malformed or too deep models are ONNX-MALFORMED.
        """
        model = _Model()
        reader = WireReader(stream)
        try:
            _walk_model(reader, model, stream.size)
        except ProtobufError as exc:
            yield ctx.finding(
                "ONNX-MALFORMED",
                Severity.HIGH,
                f"ONNX model does not parse: {exc}; what was read before is reported",
            )
        # The files the model reads as tensor bytes are identified by this reference.
        inside = sorted({loc for _, loc in model.locations if not _escapes(loc)})
        if inside:
            ctx.note(EXTERNAL_DATA_NOTE, inside[:_MAX_NOTED])
        yield from _findings(model, ctx)


def _findings(model: _Model, ctx: ScanContext) -> Iterator[Finding]:
    for tensor, location in model.locations:
        if _escapes(location):
            yield ctx.finding(
                "ONNX-EXTERNAL-DATA-ESCAPE",
                Severity.CRITICAL,
                f"tensor {tensor!r} keeps its data at {location!r}, outside the model's folder: "
                "loading it reads that file (CVE-2022-25882)",
                evidence=location,
            )
    inside = sorted({loc for _, loc in model.locations if not _escapes(loc)})
    if inside:
        yield ctx.finding(
            "ONNX-EXTERNAL-DATA",
            Severity.INFO,
            f"tensor data is kept in {len(inside)} external file(s) beside the model",
            evidence=", ".join(inside[:20]),
        )
    for domain, op_type in sorted(model.operators):
        if domain in STANDARD_DOMAINS or (domain, op_type) in model.functions:
            continue
        yield ctx.finding(
            "ONNX-CUSTOM-OPERATOR",
            Severity.HIGH,
            f"node uses operator {op_type!r} from custom domain {domain!r}: running the model "
            "needs a custom operator library (native code) that is not part of the model",
            evidence=f"{domain}::{op_type}",
        )


def _escapes(location: str) -> bool:
    if not location or "\x00" in location or location.startswith(("/", "\\")):
        return True
    if len(location) > 1 and location[1] == ":":  # a Windows drive
        return True
    normal = posixpath.normpath(location.replace("\\", "/"))
    return normal == ".." or normal.startswith("../")


def _walk_model(reader: WireReader, model: _Model, end: int) -> None:
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        stop = reader.tell() + value
        if number == 7:  # graph
            _walk_graph(reader, model, stop, depth=1)
        elif number == 20:  # training_info: initialization and algorithm graphs
            for inner, inner_wire, length in reader.fields(stop):
                if inner in (1, 2) and inner_wire == LENGTH:
                    _walk_graph(reader, model, reader.tell() + length, depth=2)
        elif number == 25:  # functions
            _walk_function(reader, model, stop)


def _walk_graph(reader: WireReader, model: _Model, end: int, *, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ProtobufError(f"graphs nested deeper than {MAX_DEPTH}")
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        stop = reader.tell() + value
        if number == 1:  # node
            _walk_node(reader, model, stop, depth=depth)
        elif number == 5:  # initializer
            _walk_tensor(reader, model, stop)
        elif number == 15:  # sparse_initializer: values and indices tensors
            _walk_sparse(reader, model, stop)


def _walk_sparse(reader: WireReader, model: _Model, end: int) -> None:
    for number, wire, value in reader.fields(end):
        if number in (1, 2) and wire == LENGTH:
            _walk_tensor(reader, model, reader.tell() + value)


def _walk_node(reader: WireReader, model: _Model, end: int, *, depth: int) -> None:
    op_type = domain = ""
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        if number == 4:
            op_type = reader.string(value)
        elif number == 7:
            domain = reader.string(value)
        elif number == 5:
            _walk_attribute(reader, model, reader.tell() + value, depth=depth)
    model.operators.add((domain, op_type))


def _walk_attribute(reader: WireReader, model: _Model, end: int, *, depth: int) -> None:
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        stop = reader.tell() + value
        if number in (5, 10):  # t, tensors
            _walk_tensor(reader, model, stop)
        elif number in (6, 11):  # g, graphs
            _walk_graph(reader, model, stop, depth=depth + 1)
        elif number in (22, 23):  # sparse_tensor, sparse_tensors
            _walk_sparse(reader, model, stop)


def _walk_tensor(reader: WireReader, model: _Model, end: int) -> None:
    name = ""
    locations: list[str] = []
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        if number == 8:
            name = reader.string(value)
        elif number == 13:  # external_data: StringStringEntryProto
            key = text = ""
            for inner, inner_wire, length in reader.fields(reader.tell() + value):
                if inner_wire == LENGTH and inner == 1:
                    key = reader.string(length)
                elif inner_wire == LENGTH and inner == 2:
                    text = reader.string(length)
            if key == "location":
                locations.append(text)
    model.locations.extend((name, location) for location in locations)


def _walk_function(reader: WireReader, model: _Model, end: int) -> None:
    name = domain = ""
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        if number == 1:
            name = reader.string(value)
        elif number == 10:
            domain = reader.string(value)
        elif number == 7:
            _walk_node(reader, model, reader.tell() + value, depth=1)
        elif number == 11:  # attribute_proto: default values, tensors and graphs among them
            _walk_attribute(reader, model, reader.tell() + value, depth=1)
    model.functions.add((domain, name))
