"""NumPy memory layouts in pickles (verifier/scanners/pickle_dtype.py), NumPy as the oracle.

A BUILD on `numpy.dtype(...)` hands NumPy a state it copies into the descriptor; for structured
dtypes NumPy 2 takes the fields and the flags as written. A state that says "no objects" over an
object field makes NumPy read the file's bytes as `PyObject *` (the process crashes on the first
access; a crafted pointer is a path to code execution), and a field past the item's end reads
past each element. Every name such a pickle imports is allowlisted.

The oracle is NumPy itself, in a worker subprocess that unpickles nothing but `numpy.dtype` and
never touches array data: it reports whether the dtype it got is *inconsistent* (flags that
disagree with the object fields it holds, or a field outside the item). The property: whenever
NumPy accepts an inconsistent state, the scanner reports `PICKLE-NUMPY-MEMORY`; and for every
dtype NumPy itself pickles (Hypothesis draws them), it reports nothing.
"""

from __future__ import annotations

import io
import pickle
import resource
import struct
import subprocess
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.scanners.pickle_oracle import Worker
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.pickle_walk import analyse_pickle
from verifier.scanners.sniff import HEAD_SIZE

CODE = "PICKLE-NUMPY-MEMORY"

_WORKER = r"""
import io, json, pickle, sys
import numpy as np

class OnlyDtypes(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        raise pickle.UnpicklingError(f"{module}.{name} refused")

def structural_objects(d, depth=0):
    if depth > 40:
        raise RecursionError
    if d.kind == "O":
        return True
    if d.subdtype is not None and d.subdtype[0] is not d:
        return structural_objects(d.subdtype[0], depth + 1)
    if d.fields:
        return any(structural_objects(v[0], depth + 1) for v in d.fields.values())
    return False

def inconsistent(d, depth=0):
    if depth > 40:
        return "too deep"
    if structural_objects(d) != bool(d.flags & 1):
        return f"flags {d.flags} vs objects {structural_objects(d)}"
    if d.fields:
        for key, value in d.fields.items():
            if value[1] < 0 or value[1] + value[0].itemsize > d.itemsize:
                return f"field {key!r} outside the item"
            why = inconsistent(value[0], depth + 1)
            if why:
                return why
    if d.subdtype is not None and d.subdtype[0] is not d:
        return inconsistent(d.subdtype[0], depth + 1)
    return None

for line in sys.stdin:
    try:
        d = OnlyDtypes(io.BytesIO(bytes.fromhex(line.strip()))).load()
        answer = {"loaded": isinstance(d, np.dtype), "inconsistent": inconsistent(d)}
    except Exception as exc:
        answer = {"loaded": False, "inconsistent": None, "error": repr(exc)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"""


@pytest.fixture(scope="module")
def oracle() -> Iterator[Worker]:
    """NumPy in a worker: what dtype does this pickle give it, and is it consistent?"""
    worker = Worker(_WORKER)
    yield worker
    worker.close()


def _findings(data: bytes) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), "model.pkl", data[:HEAD_SIZE])
    return findings


def _load_in_a_child(path: Path, data: bytes, code: str) -> subprocess.CompletedProcess[bytes]:
    """Write `data` to `path`, run `code` in a child (`{path!r}` names it), no core dump."""
    path.write_bytes(data)
    source = "import pickle; " + code.replace("{path!r}", repr(str(path)))
    return subprocess.run(
        [sys.executable, "-I", "-W", "ignore", "-c", source],
        capture_output=True,
        timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),
    )


def _dtype_findings(data: bytes) -> list[Finding]:
    return [f for f in analyse_findings(data) if f.code == CODE]


def analyse_findings(data: bytes) -> list[Finding]:
    return _findings(data)


# --- dtypes as NumPy pickles them, with a state the test may change ---------------------------


@dataclass
class Dtype:
    """A dtype pickled as NumPy does (`numpy.dtype(name, False, True)` + BUILD of `state`)."""

    args: tuple[object, ...]
    state: list[object]
    fields: dict[str, list[object]] = field(default_factory=dict)

    def __reduce__(self) -> tuple[object, ...]:
        state = list(self.state)
        if self.fields:
            state[4] = {key: tuple(value) for key, value in self.fields.items()}
        return (np.dtype, self.args, tuple(state))


def _editable(d: np.dtype) -> Dtype:
    """`d` as an editable `Dtype`, fields and sub-array bases included."""
    _, args, state = d.__reduce__()
    out = Dtype(args, list(state))
    if state[2] is not None:
        base, shape = state[2]
        out.state[2] = (_editable(base), shape)
    if state[4] is not None:
        # Titles share the entry of their field: keep them one object, as NumPy does.
        done: dict[int, list[object]] = {}
        for key, entry in state[4].items():
            if id(entry) not in done:
                done[id(entry)] = [_editable(entry[0]), *entry[1:]]
            out.fields[key] = done[id(entry)]
    return out


def _structs(d: Dtype) -> Iterator[Dtype]:
    yield d
    if isinstance(d.state[2], tuple):
        yield from _structs(d.state[2][0])
    for entry in d.fields.values():
        assert isinstance(entry[0], Dtype)
        yield from _structs(entry[0])


# --- NumPy's own pickles are accepted ---------------------------------------------------------

REAL_DTYPES = [
    "f8", ">f4", "<i2", "u1", "?", "c16", "f2", "O", "S7", "U5", "V12", "M8[ns]", "m8[D]",
    [("a", "<i8"), ("b", "<f8")],
    [("a", "<i8"), ("b", "O")],
    [("a", "u1"), ("b", "<f8")],
    [(("title", "x"), "<f4"), ("y", "O")],
    [("sub", "<f4", (2, 3)), ("o", "O", (2,))],
    [("n", [("p", "<i4"), ("q", "O")]), ("r", "S3")],
    ("<f4", (2, 3)),
    ("O", (4,)),
]  # fmt: skip


@pytest.mark.parametrize("spec", REAL_DTYPES, ids=repr)
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_pickles_of_real_dtypes_pass(spec: object, align: bool, protocol: int) -> None:
    d = np.dtype(spec, align=align)  # type: ignore[call-overload]
    for value in (d, np.zeros(3, dtype=d)):
        data = pickle.dumps(value, protocol=protocol)
        assert _dtype_findings(data) == [], (d, protocol)


def test_sklearn_tree_nodes_pass() -> None:
    """scikit-learn's trees keep their nodes in a structured array (a real saver's dtype)."""
    tree = pytest.importorskip("sklearn.tree")
    model = tree.DecisionTreeClassifier(max_depth=3).fit([[0, 1], [1, 0], [1, 1]], [0, 1, 1])
    data = pickle.dumps(model, protocol=4)
    assert b"left_child" in data
    assert _dtype_findings(data) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=hnp.nested_dtypes(), protocol=st.integers(0, 5))
def test_every_dtype_numpy_pickles_passes(d: np.dtype, protocol: int) -> None:
    data = pickle.dumps(d, protocol=protocol)
    assert _dtype_findings(data) == [], d


# --- states NumPy accepts but never writes -------------------------------------------------


def _lying_object_field() -> Dtype:
    d = _editable(np.dtype([("a", "<i8"), ("b", "O")]))
    d.state[7] = 16  # the flags of a struct without objects
    return d


def _mutations() -> dict[str, Dtype]:
    out: dict[str, Dtype] = {"object field, object flags cleared": _lying_object_field()}
    d = _editable(np.dtype([("a", "<i8"), ("b", "<f8")]))
    d.state[7] = 16 | 27  # objects claimed over raw numbers
    out["plain fields, object flags set"] = d
    d = _editable(np.dtype([("a", "<i8"), ("b", "<f8")]))
    d.fields["b"][1] = 12  # 8 bytes at offset 12 of a 16-byte item
    out["field past the item"] = d
    d = _editable(np.dtype([("a", "<i8"), ("b", "<f8")]))
    d.fields["hidden"] = [_editable(np.dtype("O")), 8]  # a key not among the names
    out["object field hidden as an extra key"] = d
    d = _editable(np.dtype([("a", "<i8"), ("b", "<f8")]))
    d.state[5] = 8  # item size below the fields
    d.args = ("V8", False, True)
    out["item size below the fields"] = d
    d = _editable(np.dtype([("n", [("p", "<i4"), ("q", "O")]), ("r", "S3")]))
    inner = d.fields["n"][0]
    assert isinstance(inner, Dtype)
    inner.state[7] = 16
    d.state[7] = 16
    out["nested struct, object flags cleared at both levels"] = d
    d = _editable(np.dtype(("O", (2,))))
    d.state[7] = 0
    out["object sub-array, flags cleared"] = d
    return out


@pytest.mark.parametrize("name", sorted(_mutations()))
def test_inconsistent_states_numpy_accepts_are_reported(oracle: Worker, name: str) -> None:
    data = pickle.dumps(_mutations()[name], protocol=2)
    answer = oracle.ask(data)
    assert answer["loaded"] and answer["inconsistent"], answer  # NumPy takes it as written
    found = _dtype_findings(data)
    assert found and all(f.severity is Severity.CRITICAL for f in found), name


def _frombuffer(dtype: bytes, raw: bytes) -> bytes:
    def s(text: str) -> bytes:
        return b"X" + struct.pack("<I", len(text)) + text.encode()

    return (
        b"\x80\x02cnumpy.core.numeric\n_frombuffer\n(B" + struct.pack("<I", len(raw)) + raw
        + dtype + b"(K\x01t" + s("C") + b"tR."
    )  # fmt: skip


def test_the_object_pointer_crash_is_real_and_reported(tmp_path: Path) -> None:
    """The loader as oracle: pickle.load, then reading the field, kills the process."""
    dtype = _opcodes(_lying_object_field())
    data = _frombuffer(dtype, struct.pack("<qQ", 7, 0x4141414141414141))
    proc = _load_in_a_child(
        tmp_path / "lying.pkl", data, "a = pickle.load(open({path!r}, 'rb')); print(a['b'])"
    )
    assert proc.returncode < 0, proc  # killed by a signal (SIGSEGV): NumPy followed the bytes
    assert [f.code for f in _findings(data) if f.severity is Severity.CRITICAL] == [CODE]


def _opcodes(value: object) -> bytes:
    """`value` pickled without memo entries, PROTO or STOP: opcodes to splice in."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=2)
    pickler.fast = True  # no memo: the opcodes stand alone
    pickler.dump(value)
    return out.getvalue()[2:-1]


def test_a_dtype_built_after_it_was_used_is_reported() -> None:
    """An array made with a plain dtype, which a later BUILD turns into one with objects."""
    plain = b"cnumpy\ndtype\nX\x03\x00\x00\x00V16\x89\x88\x87Rq\x01"
    state = _opcodes(_editable(np.dtype([("a", "<i8"), ("b", "O")])).__reduce__()[2])
    data = (
        b"\x80\x02cnumpy.core.numeric\n_frombuffer\n(B\x10\x00\x00\x00" + b"A" * 16
        + plain + b"(K\x01tX\x01\x00\x00\x00CtR0h\x01" + state + b"b."
    )  # fmt: skip
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None, analysis.error
    assert [why for why, _ in analysis.numpy_memory] == [
        "a dtype state NumPy never writes: the dtype was used before its state was set"
    ]


def test_a_build_on_a_numpy_dtypes_class_instance_is_reported() -> None:
    state = _opcodes(_lying_object_field().__reduce__()[2])
    data = b"\x80\x02cnumpy.dtypes\nVoidDType\nX\x03\x00\x00\x00V16\x85R" + state + b"b."
    analysis = analyse_pickle(BytesScanStream(data))
    assert any("not made by numpy.dtype" in why for why, _ in analysis.numpy_memory), (
        analysis.numpy_memory,
        analysis.error,
    )


# --- the differential property: whatever NumPy takes inconsistent, the scanner reports --------


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    d = _editable(draw(hnp.nested_dtypes(max_itemsize=64)))
    structs = list(_structs(d))
    target = draw(st.sampled_from(structs))
    what = draw(st.sampled_from(["flags", "offset", "elsize", "extra"]))
    if what == "flags":
        target.state[7] = draw(st.integers(0, 255))
    elif what == "offset" and target.fields:
        key = draw(st.sampled_from(sorted(target.fields)))
        target.fields[key][1] = draw(st.integers(0, 80))
    elif what == "elsize" and isinstance(target.state[5], int) and target.state[5] > 0:
        size = draw(st.integers(1, 80))
        target.state[5] = size
        kind = str(target.args[0])[0]
        target.args = (f"{kind}{size // 4 if kind == 'U' else size}", False, True)
    elif what == "extra" and target.fields:
        extra = draw(st.sampled_from(["O", "<f8", "u1"]))
        target.fields["extra"] = [_editable(np.dtype(extra)), draw(st.integers(0, 80))]
    return pickle.dumps(d, protocol=draw(st.sampled_from([2, 4])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_mutated())
def test_what_numpy_takes_inconsistent_the_scanner_reports(oracle: Worker, data: bytes) -> None:
    answer = oracle.ask(data)
    if answer["loaded"] and answer["inconsistent"]:
        assert _dtype_findings(data), answer


# --- numpy.ndarray over the pickle's own bytes ------------------------------------------------

O8 = b"cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R"
NDARRAY_OVER_BYTES = b"\x80\x02cnumpy\nndarray\n(K\x01\x85" + O8 + b"B\x08\x00\x00\x00AAAAAAAAtR."


def test_an_ndarray_over_bytes_with_objects_crashes_numpy_and_is_reported(tmp_path: Path) -> None:
    """numpy.ndarray(shape, object dtype, buffer): frombuffer refuses it, the constructor not."""
    proc = _load_in_a_child(
        tmp_path / "over.pkl", NDARRAY_OVER_BYTES, "print(pickle.load(open({path!r}, 'rb')))"
    )
    assert proc.returncode < 0, proc  # SIGSEGV: the bytes were taken as object pointers
    found = [f for f in _findings(NDARRAY_OVER_BYTES) if f.severity is Severity.CRITICAL]
    assert [f.code for f in found] == [CODE]
    assert "buffer" in found[0].message


@pytest.mark.parametrize(
    ("data", "reported"),
    [
        (NDARRAY_OVER_BYTES, True),
        # NEWOBJ_EX: numpy.ndarray.__new__(ndarray, (1,), dtype, **{"buffer": ...}).
        (
            b"\x80\x04cnumpy\nndarray\nK\x01\x85" + O8 + b"\x86}X\x06\x00\x00\x00buffer"
            + b"B\x08\x00\x00\x00AAAAAAAAs\x92.",
            True,
        ),
        # An array without a buffer: NumPy allocates (and zero-fills objects).
        (b"\x80\x02cnumpy\nndarray\n(K\x01\x85" + O8 + b"tR.", False),
    ],
    ids=["buffer", "keywords", "no-buffer"],
)  # fmt: skip
def test_calls_of_ndarray_with_a_buffer_are_reported(data: bytes, reported: bool) -> None:
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None, analysis.error
    assert bool(analysis.numpy_memory) is reported, analysis.numpy_memory


def test_numpy_own_array_pickles_never_call_ndarray() -> None:
    """What NumPy writes for arrays (every protocol, object arrays and subclasses) passes."""
    values = [
        np.arange(6, dtype="<f4").reshape(2, 3),
        np.array([1, "x", None], dtype=object),
        np.ma.masked_array([1.0, 2.0], mask=[False, True]),
        np.asfortranarray(np.ones((2, 2))),
    ]
    for value in values:
        for protocol in range(6):
            data = pickle.dumps(value, protocol=protocol)
            assert analyse_pickle(BytesScanStream(data)).numpy_memory == [], (value, protocol)


# --- attributes NumPy looks up on instances: __array_interface__ names an address -------------


class _Namespace:
    """`SimpleNamespace()` then a BUILD of `attributes` (what the pickle writes for one)."""

    def __init__(self, attributes: dict[str, object]) -> None:
        self.attributes = attributes

    def __reduce__(self) -> tuple[object, ...]:
        return (types.SimpleNamespace, (), self.attributes)


class _MaskedArray:
    """A masked array whose fill value is `fill`, as `MaskedArray.__reduce__` writes it."""

    def __init__(self, fill: object) -> None:
        self.fill = fill

    def __reduce__(self) -> tuple[object, ...]:
        args = (np.ma.MaskedArray, np.ndarray, (0,), b"b")
        state = (1, (1,), np.dtype("f8"), False, bytes(8), b"\x00", self.fill)
        return (np.ma.core._mareconstruct, args, state)


INTERFACE = {"shape": (1,), "typestr": "<f8", "data": (0x41414141, True), "version": 3}


def test_an_array_interface_attribute_reads_memory_under_pickle_load_and_is_reported(
    tmp_path: Path,
) -> None:
    data = pickle.dumps(_MaskedArray(_Namespace({"__array_interface__": INTERFACE})), protocol=2)
    proc = _load_in_a_child(tmp_path / "interface.pkl", data, "pickle.load(open({path!r}, 'rb'))")
    assert proc.returncode < 0, proc  # SIGSEGV at load: NumPy read address 0x41414141
    found = [f for f in _findings(data) if f.severity is Severity.CRITICAL]
    assert [f.code for f in found] == ["PICKLE-STATE-CALL"]
    assert "__array_interface__" in found[0].message


@pytest.mark.parametrize(
    "state",
    [
        {"__array_interface__": INTERFACE},
        (None, {"__array_struct__": 1}),  # slot state: set with setattr
        {"ok": 1, "__torch_function__": 2},
    ],
    ids=["dict", "slots", "second-key"],
)
def test_a_build_naming_a_hook_attribute_is_reported(state: object) -> None:
    data = pickle.dumps(_Namespace(state), protocol=2)  # type: ignore[arg-type]
    analysis = analyse_pickle(BytesScanStream(data))
    assert any("which code looks up on instances" in why for why, _ in analysis.state_calls)


def test_torch_state_naming_a_hook_attribute_is_reported() -> None:
    """_rebuild_from_type_v2(func, type, args, state) sets `state` as the tensor's attributes."""
    data = (
        b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor\n"
        b"ctorch\nTensor\n)}X\x13\x00\x00\x00__array_interface__NstR."
    )
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None, analysis.error
    assert any(
        "gives an object the attribute __array_interface__" in why
        for why, _ in analysis.state_calls
    )


def test_plain_attributes_in_a_build_pass() -> None:
    data = pickle.dumps(_Namespace({"lr": 0.1, "_private": 1, "__": 2}), protocol=2)
    assert analyse_pickle(BytesScanStream(data)).state_calls == []


@pytest.mark.parametrize(
    "data",
    [
        # Python 3.13: SimpleNamespace(mapping) sets the mapping's items as attributes.
        b"\x80\x02ctypes\nSimpleNamespace\n}X\x13\x00\x00\x00__array_interface__Ns\x85R.",
        # copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state).
        b"\x80\x02ccopyreg\n_reconstructor\n(ctypes\nSimpleNamespace\nctypes\nSimpleNamespace\n"
        b"}X\x13\x00\x00\x00__array_interface__NstR.",
    ],
    ids=["simple-namespace-mapping", "reconstructor-state"],
)
def test_calls_that_set_a_hook_attribute_are_reported(data: bytes) -> None:
    analysis = analyse_pickle(BytesScanStream(data))
    assert analysis.error is None, analysis.error
    assert any("attribute __array_interface__" in why for why, _ in analysis.state_calls)
