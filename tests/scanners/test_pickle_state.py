"""Attributes a pickle gives an object, then makes the unpickler call (pickle_state.py).

BUILD looks `__setstate__` up on the object it builds, APPEND(S) `extend`/`append` and ADDITEMS
`add` on one that is not a list or set; an instance's `__dict__` (or a class's `__getattr__`)
answers before the class. Each bypass below imports only allowlisted names and hands a payload
to `torch.storage._load_from_bytes` (a nested `torch.load(weights_only=False)`) that way; the
real `pickle.load` (the loader oracle, in a subprocess, marker-only payload) proves it runs,
and the scanner must report it. What savers write with the same classes stays clean.
"""

from __future__ import annotations

import argparse
import pickle
import struct
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import samples
from tests.scanners.oracle_client import LoaderOracle
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.sniff import HEAD_SIZE

LOAD_FROM_BYTES = b"ctorch.storage\n_load_from_bytes\n"
NAMESPACES = {
    "SimpleNamespace": b"ctypes\nSimpleNamespace\n)R",
    "argparse.Namespace": b"cargparse\nNamespace\n)\x81",
}
ATTRIBUTE_DICT = "lightning.pytorch.utilities.parsing\nAttributeDict\n"


def _str(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _bytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _attribute(name: str) -> bytes:
    """A state dict {name: torch.storage._load_from_bytes}."""
    return b"}" + _str(name) + LOAD_FROM_BYTES + b"s"


def _payload(marker_dir: Path) -> bytes:
    return _bytes(samples.os_system(marker_dir))


Build = Callable[[Path], bytes]

#: Bypasses on main before pickle_state.py: each imports only allowlisted names.
BYPASSES: dict[str, Build] = {
    **{
        f"second-build-on-{label}": (
            lambda m, new=new: b"\x80\x02" + new + _attribute("__setstate__") + b"b"
            + _payload(m) + b"b."
        )
        for label, new in NAMESPACES.items()
    },
    **{
        f"appends-on-{label}": (
            lambda m, new=new: b"\x80\x02" + new + _attribute("append") + b"b("
            + _payload(m) + b"e."
        )
        for label, new in NAMESPACES.items()
    },
    "additems-on-SimpleNamespace": lambda m: (
        b"\x80\x04" + NAMESPACES["SimpleNamespace"] + _attribute("add") + b"b(" + _payload(m)
        + b"\x90."
    ),
    "build-on-AttributeDict": lambda m: (
        b"\x80\x02c" + ATTRIBUTE_DICT.encode() + b")\x81(" + _str("__setstate__")
        + LOAD_FROM_BYTES + b"u" + _payload(m) + b"b."
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoaderOracle]:
    runner = LoaderOracle(tmp_path_factory.mktemp("oracle"))
    yield runner
    runner.close()


def _findings(data: bytes) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), "model.pkl", data[:HEAD_SIZE])
    return findings


def _state_calls(data: bytes) -> list[Finding]:
    return [f for f in _findings(data) if f.code == "PICKLE-STATE-CALL"]


@pytest.mark.parametrize("name", sorted(BYPASSES))
def test_a_bypass_runs_under_pickle_load_and_is_reported(oracle: LoaderOracle, name: str) -> None:
    if "AttributeDict" in name:
        pytest.importorskip("lightning")
    marker_dir = oracle.marker_dir()
    data = BYPASSES[name](marker_dir)
    answer = oracle.ask(data, "pickle", marker_dir)
    assert answer.ran, (name, answer.error)  # the attack is real
    reported = _state_calls(data)
    assert reported and all(f.severity is Severity.CRITICAL for f in reported), name


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # torch sets the `state` it is given as attributes: BUILD then finds __setstate__.
        (
            b"ctorch._utils\n_rebuild_parameter_with_state\n(NI00\n}" + _attribute("__setstate__")
            + b"tR" + _bytes(b"payload") + b"b",
            "_rebuild_parameter_with_state",
        ),
        # copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state).
        (
            b"ccopyreg\n_reconstructor\n(ctypes\nSimpleNamespace\nctypes\nSimpleNamespace\n"
            + _attribute("__setstate__") + b"tR" + _bytes(b"payload") + b"b",
            "a base other than object",
        ),
        # Python 3.13's SimpleNamespace takes attributes from a positional mapping.
        (
            b"ctypes\nSimpleNamespace\n(" + _attribute("__setstate__") + b"tR"
            + _bytes(b"payload") + b"b",
            "SimpleNamespace given a mapping",
        ),
        # An AttributeDict handed to code: its missing attributes are items the pickle chose.
        (
            b"cnumpy.random._pickle\n__bit_generator_ctor\n(c" + ATTRIBUTE_DICT.encode()
            + b"tR",
            "handed a Lightning AttributeDict",
        ),
        (
            b"ctypes\nSimpleNamespace\n)R}(" + _str("hparams") + b"c" + ATTRIBUTE_DICT.encode()
            + b")\x81ub",
            "BUILD hands a Lightning AttributeDict",
        ),
        (
            b"c" + ATTRIBUTE_DICT.encode() + b")\x81(" + _bytes(b"item") + b"e",
            "APPENDS looks extend or append up on a Lightning AttributeDict",
        ),
        # Slot state on a class sets class attributes in the loading process (a patch that
        # outlives the load; a function set there is bound, so `_load_from_bytes` itself fails).
        (
            b"cargparse\nNamespace\n(N" + _attribute("__setstate__") + b"tb",
            "BUILD on a value no saver builds",
        ),
    ],
    ids=[
        "torch-state",
        "reconstructor-base",
        "namespace-mapping",
        "handed",
        "in-state",
        "appends",
        "class-attribute",
    ],
)  # fmt: skip
def test_attributes_the_pickle_chose_are_reported(body: bytes, why: str) -> None:
    reported = _state_calls(b"\x80\x02" + body + b".")
    assert reported and all(f.severity is Severity.CRITICAL for f in reported), why
    # A state naming `__setstate__` is also a hook attribute (reported where it is set).
    assert any(why in f.message for f in reported), [f.message for f in reported]


#: Every class allowed for Trainer, Seq2SeqTrainer, Lightning and Fabric files.
NEW_CLASSES = [
    "argparse.Namespace",
    "transformers.training_args_seq2seq.Seq2SeqTrainingArguments",
    "transformers.generation.configuration_utils.GenerationConfig",
    "transformers.training_args.TrainingArguments",
    "lightning.pytorch.utilities.parsing.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
    "lightning_fabric.utilities.data.AttributeDict",
]


def _new(full: str) -> bytes:
    module, name = full.rsplit(".", 1)
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n)\x81"


@pytest.mark.parametrize("full", NEW_CLASSES)
def test_the_allowed_classes_with_harmful_state_are_caught(full: str) -> None:
    # A callable of the pickle's choosing in the state: an import judged on its own.
    dangerous = _new(full) + b"}" + _str("run") + b"cos\nsystem\ns" + b"b."
    assert ("PICKLE-DANGEROUS-GLOBAL", "os.system") in _serious(b"\x80\x02" + dangerous)
    # Given a __setstate__ attribute, then built again: the second BUILD would call it.
    again = _new(full) + _attribute("__setstate__") + b"b" + _bytes(b"payload") + b"b."
    reported = _state_calls(b"\x80\x02" + again)
    assert reported and {f.severity for f in reported} == {Severity.CRITICAL}


# --- what savers write ------------------------------------------------------------------------


def _serious(data: bytes) -> list[tuple[str, str | None]]:
    return [(f.code, f.evidence) for f in _findings(data) if f.severity.at_least(Severity.MEDIUM)]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_namespaces_as_pickle_writes_them_are_clean(protocol: int) -> None:
    value = {
        "simple": types.SimpleNamespace(lr=0.1, nested=types.SimpleNamespace(a=1)),
        "args": argparse.Namespace(lr=0.1, tags=["a"]),
        "shared": [argparse.Namespace(x=1)] * 2,
    }
    assert _serious(pickle.dumps(value, protocol=protocol)) == []


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize(
    ("lightning", "fabric"),
    [
        ("lightning.pytorch.utilities.parsing", "lightning.fabric.utilities.data"),
        ("pytorch_lightning.utilities.parsing", "lightning_fabric.utilities.data"),
    ],
)
def test_attribute_dicts_as_pickle_writes_them_are_clean(
    protocol: int, lightning: str, fabric: str
) -> None:
    ours = pytest.importorskip(lightning).AttributeDict
    fabrics = pytest.importorskip(fabric).AttributeDict
    value = {
        "hparams": ours(lr=0.1, nested=ours(a=1), tags=[ours()]),
        "fabric": fabrics(step=3, args=argparse.Namespace(lr=0.1)),
        "in_tuple": (ours(x=1), 2),
    }
    assert _serious(pickle.dumps(value, protocol=protocol)) == []


def test_the_python_this_runs_on_is_the_one_argued() -> None:
    # SimpleNamespace(mapping) is a TypeError before Python 3.13 and sets attributes after.
    mapping = {"x": 1}
    if sys.version_info >= (3, 13):
        assert types.SimpleNamespace(mapping).x == 1  # type: ignore[call-arg]
    else:
        with pytest.raises(TypeError):
            types.SimpleNamespace(mapping)  # type: ignore[call-arg]
