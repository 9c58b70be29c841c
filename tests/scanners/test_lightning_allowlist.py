"""What a Lightning checkpoint imports is what docs/scanners.md argues, checked against the
installed Lightning (verifier/scanners/lightning_globals.py).

A `.ckpt` from `Trainer.fit` is `torch.save` of a dictionary: weights, optimizer and scheduler
state dicts, loop progress, callback state, and the hyper-parameters `save_hyperparameters`
collected (as scripts write them, an `argparse.Namespace`). This test trains the real-saver
sample in both package namespaces and compares the imports of every checkpoint with the list
below (a global Lightning starts writing fails it: read it, argue it in the docs, add it), and
checks the stdlib class the hyper-parameters bring (`argparse.Namespace`) the way the
transformers test checks its classes. `Fabric.save` of the state Fabric's documentation builds
keeps Lightning's `AttributeDict`: each listed path must name the installed class, a plain
`dict` but for the attribute hooks argued (pinned by a digest of their syntax tree), which
pickle writes without a BUILD.
"""

from __future__ import annotations

import argparse
import importlib
import pickle
import pickletools
import zipfile
from pathlib import Path

import pytest

from tests.scanners import real_savers
from tests.scanners.test_transformers_allowlist import _digest
from verifier.scanners.lightning_globals import ATTRIBUTE_DICTS, LIGHTNING_GLOBALS
from verifier.scanners.pickle_globals import GlobalClass, classify

_HOOKS = ("__new__", "__reduce__", "__reduce_ex__", "__setstate__", "__getattr__")

#: Every import of the checkpoints `Trainer.fit` and `Trainer.save_checkpoint` write for the
#: real-saver sample (CPU, bf16-mixed, Adam with ReduceLROnPlateau, checkpoint, early stopping,
#: LR monitor, timer and SWA callbacks, a stateful datamodule).
TRAINER_CHECKPOINT_IMPORTS = {
    "argparse.Namespace",
    "collections.OrderedDict",
    "pathlib.PurePosixPath",
    "torch.FloatStorage",
    "torch._utils._rebuild_tensor_v2",
}


#: What `Fabric.save` adds for the state of the real-saver sample: both AttributeDicts.
FABRIC_STATE_IMPORTS = {
    "argparse.Namespace",
    "collections.OrderedDict",
    "torch.FloatStorage",
    "torch._utils._rebuild_tensor_v2",
}


def _imports(pickled: bytes) -> set[str]:
    """The globals a protocol 2 `torch.save` pickle names (GLOBAL opcodes; no memo games)."""
    found: set[str] = set()
    for opcode, argument, _ in pickletools.genops(pickled):
        assert opcode.name != "STACK_GLOBAL", "torch.save writes protocol 2"
        if opcode.name == "GLOBAL":
            assert isinstance(argument, str)
            found.add(argument.replace(" ", "."))
    return found


@pytest.mark.parametrize("label", sorted(real_savers.LIGHTNING_NAMESPACES))
def test_a_trainer_checkpoint_imports_only_what_is_argued(tmp_path: Path, label: str) -> None:
    folder = real_savers.build(f"{label}-trainer-checkpoint", tmp_path)
    checkpoints = sorted(folder.glob("*.ckpt"))
    assert {p.name for p in checkpoints} >= {"last.ckpt", "manual.ckpt"}, checkpoints
    for path in checkpoints:
        with zipfile.ZipFile(path) as archive:
            (data,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            assert _imports(archive.read(data)) == TRAINER_CHECKPOINT_IMPORTS, path.name
    for full in TRAINER_CHECKPOINT_IMPORTS:
        assert classify(*full.rsplit(".", 1)) is GlobalClass.SAFE, full


def test_argparse_namespace_is_rebuilt_without_calling_anything() -> None:
    # NEWOBJ is object.__new__ (Namespace's __init__ takes keywords only and does not run);
    # BUILD finds no __setstate__ and updates __dict__; no descriptor runs code on setattr.
    cls = argparse.Namespace
    assert cls.__new__ is object.__new__
    for hook in _HOOKS:
        owner = next(k for k in cls.__mro__ if hook in k.__dict__ or k is object)
        assert owner is object, hook
    for klass in cls.__mro__[:-1]:
        for name, value in vars(klass).items():
            assert not hasattr(type(value), "__set__") or name.startswith("__"), name
    with pytest.raises(TypeError):
        cls("positional")  # REDUCE passes positional arguments only
    ns = argparse.Namespace(lr=0.1)
    assert pickle.loads(pickle.dumps(ns, protocol=2)) == ns


@pytest.mark.parametrize("full", ["argparse.ArgumentParser", "argparse.FileType", "argparse._sys"])
def test_the_rest_of_argparse_stays_flagged(full: str) -> None:
    assert classify(*full.rsplit(".", 1)) is not GlobalClass.SAFE


def _ckpt_imports(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        (data,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        return _imports(archive.read(data))


@pytest.mark.parametrize("label", sorted(real_savers.FABRIC_NAMESPACES))
def test_a_fabric_state_imports_only_what_is_argued(tmp_path: Path, label: str) -> None:
    folder = real_savers.build(f"{label}-save", tmp_path)
    _, parsing, data = real_savers.FABRIC_NAMESPACES[label]
    expected = FABRIC_STATE_IMPORTS | {f"{parsing}.AttributeDict", f"{data}.AttributeDict"}
    assert _ckpt_imports(folder / "state.ckpt") == expected
    assert expected - FABRIC_STATE_IMPORTS <= ATTRIBUTE_DICTS


def _resolve(full: str) -> type:
    module, name = full.rsplit(".", 1)
    found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type)
    return found


#: The hooks AttributeDict defines over `dict`, each argued in docs/scanners.md.
_ARGUED_HOOKS = {"__getattr__", "__setattr__", "__delattr__", "__repr__"}


@pytest.mark.parametrize("full", sorted(LIGHTNING_GLOBALS))
def test_an_attribute_dict_is_a_dict_with_the_hooks_argued(full: str) -> None:
    cls = _resolve(full)
    assert f"{cls.__module__}.{cls.__qualname__}" == full
    assert classify(*full.rsplit(".", 1)) is GlobalClass.SAFE
    assert issubclass(cls, dict) and cls.__new__ is dict.__new__ and cls.__init__ is dict.__init__
    own = {
        name
        for klass in cls.__mro__[: cls.__mro__.index(dict)]
        for name in vars(klass)
        if name.startswith("__") and callable(vars(klass)[name])
    }
    assert own == _ARGUED_HOOKS, full
    # Pickle writes it as NEWOBJ (or copyreg._reconstructor) and SETITEMS: never a BUILD.
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        written = pickle.dumps(cls(a=1, b=cls(c=2)), protocol=protocol)
        assert "BUILD" not in {op.name for op, _, _ in pickletools.genops(written)}


@pytest.mark.parametrize(
    "module", ["lightning.fabric.utilities.data", "lightning_fabric.utilities.data"]
)
def test_the_attribute_hooks_argued_are_unchanged(module: str) -> None:
    cls = importlib.import_module(module).AttributeDict
    digests = {
        name: _digest(getattr(cls, name)) for name in ("__getattr__", "__setattr__", "__delattr__")
    }
    assert digests == {
        "__getattr__": "dd8c8857abc6a181",
        "__setattr__": "ba4f6441351681ab",
        "__delattr__": "26b005ef9b335b1f",
    }, "AttributeDict changed: re-read it, re-argue docs/scanners.md, update the digests"
