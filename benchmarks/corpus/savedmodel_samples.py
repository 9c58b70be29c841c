"""TensorFlow SavedModel samples, encoded by hand from the SavedModel protobuf schema."""

from __future__ import annotations

from pathlib import Path

from benchmarks.corpus import benign, technique

_BENIGN_OPS = ("Placeholder", "Const", "MatMul", "Identity", "SaveV2", "RestoreV2")


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def saved_model(graph_ops: tuple[str, ...], function_ops: tuple[str, ...] = ()) -> bytes:
    """saved_model.pb: one meta graph (tag `serve`) whose graph and library use these ops."""
    nodes = b"".join(
        _field(1, _field(1, f"node_{i}") + _field(2, op)) for i, op in enumerate(graph_ops)
    )
    library = b""
    if function_ops:
        function = _field(1, _field(1, "__inference_fn")) + b"".join(
            _field(3, _field(1, f"f_{i}") + _field(2, op)) for i, op in enumerate(function_ops)
        )
        library = _field(2, _field(1, function))
    all_ops = sorted(set(graph_ops) | set(function_ops))
    op_list = b"".join(_field(1, _field(1, op)) for op in all_ops)
    meta_info = _field(2, op_list) + _field(4, "serve") + _field(5, "2.15.0")
    meta_graph = _field(1, meta_info) + _field(2, nodes + library)
    return b"\x08\x01" + _field(2, meta_graph)


def _folder(pb: bytes) -> dict[str, bytes]:
    return {"saved_model.pb": pb, "variables/variables.index": b"\x00" * 16}


@technique("savedmodel-pyfunc", family="tensorflow", expect="TF-SAVEDMODEL-PYFUNC")
def pyfunc(m: Path) -> dict[str, bytes]:
    """A graph node that runs a Python function (tf.py_function / PyFunc)."""
    return _folder(saved_model((*_BENIGN_OPS, "PyFunc")))


@technique(
    "savedmodel-eager-pyfunc-in-function", family="tensorflow", expect="TF-SAVEDMODEL-PYFUNC"
)
def eager_pyfunc(m: Path) -> dict[str, bytes]:
    """EagerPyFunc hidden in the function library, not the main graph."""
    return _folder(saved_model(_BENIGN_OPS, ("EagerPyFunc",)))


@technique("savedmodel-read-file", family="tensorflow", expect="TF-SAVEDMODEL-FILE-IO")
def read_file(m: Path) -> dict[str, bytes]:
    """A graph that reads a file (tf.io.read_file) when served."""
    return _folder(saved_model((*_BENIGN_OPS, "ReadFile")))


@technique("savedmodel-write-file", family="tensorflow", expect="TF-SAVEDMODEL-FILE-IO")
def write_file(m: Path) -> dict[str, bytes]:
    """A function that writes a file (tf.io.write_file) when served."""
    return _folder(saved_model(_BENIGN_OPS, ("WriteFile",)))


@benign("savedmodel-plain", family="tensorflow")
def plain(m: Path) -> dict[str, bytes]:
    """A SavedModel with ordinary math and checkpoint ops only."""
    return _folder(saved_model(_BENIGN_OPS, ("MatMul", "Relu")))
