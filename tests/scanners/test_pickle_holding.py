"""Lightning `AttributeDict`s hidden where the walk kept no track of them (pickle_holding.py).

An `AttributeDict` answers any attribute a `dict` lacks with an item the pickle chose. The walk
reported one handed to a call or held in a `BUILD` state only when it sat in a tuple or under a
string key of a dictionary: inside a list, a set, under an integer key or in a filled object it
was invisible. NumPy's array coercion looks attributes up on every item of a nested list, so a
`MaskedArray` whose `fill_value` is `[AttributeDict(__array__=callable)]` makes the real loader
call the pickle's callable, and `[AttributeDict(__array_interface__={...})]` makes it read
memory at an address the pickle chose (the loader dies on an unmapped one). Both imported only
allowlisted names and were allowed. The samples are made by code from the real classes; the
real `pickle.load` and `torch.load(weights_only=False)` run them in a subprocess.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.scanners.oracle_client import LoaderOracle
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.pickle_holding import MAX_DEPTH
from verifier.scanners.sniff import HEAD_SIZE

lightning = pytest.importorskip("lightning.pytorch.utilities.parsing")
numpy = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
AttributeDict = lightning.AttributeDict

ATTRIBUTE_DICT = b"clightning.pytorch.utilities.parsing\nAttributeDict\n"
#: An `AttributeDict` instance, empty (NEWOBJ): enough for the walk to follow.
INSTANCE = ATTRIBUTE_DICT + b")\x81"


def _state_calls(data: bytes) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), "model.pkl", data[:HEAD_SIZE])
    return [f for f in findings if f.code == "PICKLE-STATE-CALL"]


def _masked_array(fill_value: object) -> Any:
    """A real object-dtype `MaskedArray` whose pickled state carries `fill_value` as it is."""
    array = numpy.ma.masked_array(numpy.zeros(1, dtype=object))
    array._fill_value = fill_value  # the setter would coerce it now; the loader does on BUILD
    return array


def _torch_saved(value: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


#: name -> (the object pickled, what the real loader's failure says it did)
ATTACKS: dict[str, tuple[Callable[[], object], str]] = {
    # NumPy calls the item `__array__` with the array's dtype: `_load_from_bytes(dtype)` runs a
    # nested torch.load, which fails only because a dtype is not bytes.
    "fill-value-list-calls-array": (
        lambda: _masked_array([AttributeDict(__array__=torch.storage._load_from_bytes)]),
        "a bytes-like object is required, not 'numpy.dtypes.ObjectDType'",
    ),
    # `__array_interface__` points NumPy at memory the pickle chose: address 8 kills the loader.
    "fill-value-list-reads-memory": (
        lambda: _masked_array(
            [AttributeDict(__array_interface__={"data": (8, False), "shape": (1,), "typestr": "O"})]
        ),
        "crashed",
    ),
}


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoaderOracle]:
    runner = LoaderOracle(tmp_path_factory.mktemp("oracle"))
    yield runner
    runner.close()


@pytest.mark.parametrize("loader", ["pickle", "torch"])
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_attribute_dict_in_a_list_reaches_numpy_and_is_reported(
    oracle: LoaderOracle, name: str, loader: str
) -> None:
    make, effect = ATTACKS[name]
    value = make()
    data = pickle.dumps(value, protocol=2) if loader == "pickle" else _torch_saved(value)
    answer = oracle.ask(data, loader, oracle.marker_dir())
    assert answer.error is not None and effect in answer.error, (name, answer.error)
    reported = _state_calls(data)
    assert reported and {f.severity for f in reported} == {Severity.CRITICAL}, name


def _str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _nested_tuples(depth: int) -> bytes:
    return INSTANCE + b"\x85" * depth


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # A list handed to a call (torch's tensor constructor looks up __torch_function__).
        (b"ctorch\nTensor\n]" + INSTANCE + b"a\x85R", "a call of torch.Tensor is handed"),
        # A set holding the class, handed to a call.
        (b"cbuiltins\nset\n]" + ATTRIBUTE_DICT + b"a\x85R", "a call of builtins.set is handed"),
        # An integer key: the dictionary keeps no item for it, and used to forget it entirely.
        (b"cargparse\nNamespace\n)\x81}K\x01" + INSTANCE + b"sb", "BUILD hands"),
        # Past any depth the walk searches, it assumes one is there.
        (b"ctorch\nSize\n" + _nested_tuples(MAX_DEPTH + 2) + b"R", "a call of torch.Size"),
        # Filled after it was handed on: the call already holds the list.
        (
            b"ctorch\nTensor\n]q\x00\x85R0h\x00" + INSTANCE + b"a",
            "into a container already handed on",
        ),
        # SETITEM on an object calls its class's __setitem__ with the value.
        (b"cbuiltins\nbytearray\n)RK\x00" + INSTANCE + b"s", "__setitem__ of builtins.bytearray"),
        (b"cbuiltins\nbytearray\n)R(" + INSTANCE + b"e", "a method of builtins.bytearray"),
        # A filled OrderedDict holding one, handed to a call.
        (
            b"ctorch\nTensor\nccollections\nOrderedDict\n)R" + _str("a") + INSTANCE + b"s\x85R",
            "a call of torch.Tensor is handed",
        ),
        # NEWOBJ_EX's keyword arguments go to the class's __new__.
        (
            b"\x80\x04ctypes\nSimpleNamespace\n)}" + _str("x") + INSTANCE + b"s\x92",
            "in its keyword arguments",
        ),
    ],
    ids=[
        "list-in-call",
        "set-in-call",
        "int-key",
        "too-deep",
        "filled-late",
        "setitem",
        "appends",
        "ordered-dict",
        "newobj-ex",
    ],
)  # fmt: skip
def test_an_attribute_dict_the_walk_kept_no_track_of_is_reported(body: bytes, why: str) -> None:
    data = b"\x80\x02" + body + b"."
    reported = _state_calls(data)
    assert reported, why
    assert {f.severity for f in reported} == {Severity.CRITICAL}
    assert any(why in f.message for f in reported), [f.message for f in reported]


def test_a_shared_tuple_is_searched_once() -> None:
    # Each level names the one below twice: searched as a tree it would be 2**30 visits.
    levels = b"K\x00q\x00" + b"".join(
        b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1])
        for i in range(MAX_DEPTH - 2)
    )
    data = b"\x80\x02ctorch\nSize\n" + levels + b"\x85R."
    assert _state_calls(data) == []


def _saved_like_savers() -> dict[str, object]:
    """AttributeDicts where real code puts them: inside plain containers of the saved state."""
    return {
        "history": [AttributeDict(step=1), AttributeDict(step=2)],
        "by_epoch": {1: AttributeDict(loss=0.5), 2: [AttributeDict(loss=0.4)]},
        "ordered": OrderedDict(best=AttributeDict(score=0.9)),
        "grouped": defaultdict(list, {"a": [AttributeDict()]}),
        "pair": (AttributeDict(a=1), [AttributeDict(b=2)]),
        "nested": AttributeDict(inner=AttributeDict(items=[AttributeDict()])),
        "tensor": torch.zeros(2),
    }


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_attribute_dicts_in_containers_as_savers_write_them_are_clean(protocol: int) -> None:
    data = pickle.dumps(_saved_like_savers(), protocol=protocol)
    assert _state_calls(data) == []


def test_attribute_dicts_in_containers_saved_by_torch_are_clean() -> None:
    data = _torch_saved(_saved_like_savers())
    _, findings, _ = scan_stream(BytesScanStream(data), "state.pt", data[:HEAD_SIZE])
    assert [f for f in findings if f.severity.at_least(Severity.MEDIUM)] == []
