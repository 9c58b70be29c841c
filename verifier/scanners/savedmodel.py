"""TensorFlow SavedModel (saved_model.pb): graph and function ops that run Python or touch files."""

from __future__ import annotations

from collections.abc import Iterator

from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext, Scanner, ScanStream
from verifier.scanners.protobuf import LENGTH, ProtobufError, WireReader

#: Ops that call back into Python functions registered in the loading process.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
#: Ops that read or write arbitrary files (the SaveV2/RestoreV2 checkpoint ops every SavedModel
#: carries are not listed: they only touch the model's own variables folder).
FILE_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "LMDBReader",
        "ImmutableConst",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "SaveDataset",
        "SaveDatasetV2",
        "LoadDataset",
        "DebugIdentityV2",
        "DebugIdentityV3",
    }
)


class SavedModelScanner(Scanner):
    """Collects every op of every meta graph, its function library and stripped op list."""

    formats = frozenset({FileFormat.TF_SAVEDMODEL})

    def scan(self, stream: ScanStream, ctx: ScanContext) -> Iterator[Finding]:
        """Yield findings for Python-calling and file I/O ops.

        Raises:
            ScanLimitError: never; a malformed graph is TF-SAVEDMODEL-MALFORMED.
        """
        ops: set[str] = set()
        reader = WireReader(stream)
        try:
            for number, wire, value in reader.fields(stream.size):
                if number == 2 and wire == LENGTH:
                    _meta_graph(reader, reader.tell() + value, ops)
        except ProtobufError as exc:
            yield ctx.finding(
                "TF-SAVEDMODEL-MALFORMED",
                Severity.HIGH,
                f"saved_model.pb does not parse: {exc}; what was read before is reported",
            )
        for op in sorted(ops & PYTHON_OPS):
            yield ctx.finding(
                "TF-SAVEDMODEL-PYFUNC",
                Severity.CRITICAL,
                f"graph uses the {op} op, which calls a Python function when the model runs",
                evidence=op,
            )
        for op in sorted(ops & FILE_OPS):
            yield ctx.finding(
                "TF-SAVEDMODEL-FILE-IO",
                Severity.HIGH,
                f"graph uses the {op} op, which reads or writes files outside the model",
                evidence=op,
            )


def _meta_graph(reader: WireReader, end: int, ops: set[str]) -> None:
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        stop = reader.tell() + value
        if number == 1:  # meta_info_def: stripped_op_list (2) -> op (1) -> name (1)
            for inner, inner_wire, length in reader.fields(stop):
                if inner == 2 and inner_wire == LENGTH:
                    _op_list(reader, reader.tell() + length, ops)
        elif number == 2:  # graph_def
            _graph(reader, stop, ops)


def _op_list(reader: WireReader, end: int, ops: set[str]) -> None:
    for number, wire, value in reader.fields(end):
        if number == 1 and wire == LENGTH:
            for inner, inner_wire, length in reader.fields(reader.tell() + value):
                if inner == 1 and inner_wire == LENGTH:
                    ops.add(reader.string(length))


def _graph(reader: WireReader, end: int, ops: set[str]) -> None:
    for number, wire, value in reader.fields(end):
        if wire != LENGTH:
            continue
        stop = reader.tell() + value
        if number == 1:
            _node(reader, stop, ops)
        elif number == 2:  # library -> function (1) -> node_def (3)
            for inner, inner_wire, length in reader.fields(stop):
                if inner == 1 and inner_wire == LENGTH:
                    for f_number, f_wire, f_length in reader.fields(reader.tell() + length):
                        if f_number == 3 and f_wire == LENGTH:
                            _node(reader, reader.tell() + f_length, ops)


def _node(reader: WireReader, end: int, ops: set[str]) -> None:
    for number, wire, value in reader.fields(end):
        if number == 2 and wire == LENGTH:
            ops.add(reader.string(value))
