"""transformers' Trainer argument classes are allowed by a written-out list, checked here against
the installed transformers and accelerate.

verifier never imports either; `verifier/scanners/transformers_globals.py` writes the names out
and argues them (docs/scanners.md, "transformers Trainer checkpoints"). This test fails when
`TrainingArguments` gains or loses an enum, when a listed class could call something while it is
rebuilt (a `__new__`, `__reduce__`, `__setstate__`, `__getattr__` or settable descriptor beyond
those argued), and when the code argued is changed (a digest of its syntax tree: re-read it,
re-argue the docs, then update the digest).
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import hashlib
import importlib
import inspect
import pickle
import textwrap
import typing
import warnings
from collections.abc import Callable

import pytest

transformers = pytest.importorskip("transformers")
accelerate_state = pytest.importorskip("accelerate.state")

from transformers.utils.generic import ExplicitEnum  # noqa: E402

from verifier.scanners.pickle_globals import GlobalClass, classify  # noqa: E402
from verifier.scanners.transformers_globals import (  # noqa: E402
    TRANSFORMERS_TRAINING_CLASSES,
    TRANSFORMERS_TRAINING_ENUMS,
    TRANSFORMERS_TRAINING_GLOBALS,
)

_HOOKS = ("__reduce__", "__reduce_ex__", "__setstate__", "__getattr__", "__getattribute__")
#: Hooks a listed class may define, each argued and digested below.
_ARGUED_HOOKS = {("PartialState", "__getattr__")}


def _resolve(full: str) -> type:
    module, name = full.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = getattr(importlib.import_module(module), name)
    assert isinstance(found, type), full
    return found


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _enums_in(hint: object) -> set[str]:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {_name(hint)}
    return set().union(*(_enums_in(arg) for arg in typing.get_args(hint)))


def _held_by(cls: type, *, find: Callable[[object], set[str]] = _enums_in) -> set[str]:
    hints = typing.get_type_hints(cls)
    return set().union(*(find(hints[f.name]) for f in dataclasses.fields(cls)))


def _classes_in(hint: object) -> set[str]:
    """transformers and accelerate classes (not enums) a type hint names."""
    if isinstance(hint, type):
        ours = hint.__module__.split(".")[0] in ("transformers", "accelerate")
        return {_name(hint)} if ours and not issubclass(hint, enum.Enum) else set()
    return set().union(*(_classes_in(arg) for arg in typing.get_args(hint)))


#: Classes an argument field may hold that stay unknown (docs/scanners.md): accelerate's N-D
#: parallelism settings, which a single-process run does not write.
_LEFT_UNKNOWN = {"accelerate.parallelism_config.ParallelismConfig"}


def test_the_classes_argument_fields_hold_are_listed_or_left_unknown() -> None:
    held = _held_by(transformers.TrainingArguments, find=_classes_in) | _held_by(
        transformers.Seq2SeqTrainingArguments, find=_classes_in
    )
    assert sorted(held - TRANSFORMERS_TRAINING_CLASSES - _LEFT_UNKNOWN) == []
    assert held >= _LEFT_UNKNOWN, "a field dropped: update _LEFT_UNKNOWN and the docs"
    for full in _LEFT_UNKNOWN:
        assert classify(*full.rsplit(".", 1)) is GlobalClass.UNKNOWN


def test_the_enums_are_those_training_arguments_fields_hold() -> None:
    held = _held_by(transformers.TrainingArguments) | _held_by(
        transformers.Seq2SeqTrainingArguments
    )
    # Plus the one accelerate's PartialState (the cached device's state) holds.
    held.add(_name(type(accelerate_state.PartialState(cpu=True).distributed_type)))
    assert sorted(held ^ (TRANSFORMERS_TRAINING_ENUMS - OLDER_RELEASES_ENUMS)) == []


#: Enums older releases wrote into a field that now holds a string, kept for their files: each
#: must still be an enum of the installed release (checked with the others below).
OLDER_RELEASES_ENUMS = {"transformers.trainer_utils.FSDPOption"}


def test_the_older_releases_enums_are_still_read_as_legacy_values() -> None:
    # transformers 5 turns a transformers 4 `fsdp` (a list of FSDPOption) into its own settings.
    legacy = inspect.getsource(transformers.TrainingArguments)
    assert "list of [`~trainer_utils.FSDPOption`]" in legacy
    assert OLDER_RELEASES_ENUMS <= TRANSFORMERS_TRAINING_ENUMS


@pytest.mark.parametrize("full", sorted(TRANSFORMERS_TRAINING_GLOBALS))
def test_every_listed_name_is_allowed(full: str) -> None:
    module, name = full.rsplit(".", 1)
    assert classify(module, name) is GlobalClass.SAFE
    assert _name(_resolve(full)) == full


@pytest.mark.parametrize("full", sorted(TRANSFORMERS_TRAINING_ENUMS))
def test_a_listed_enum_is_rebuilt_by_a_lookup_among_its_members(full: str) -> None:
    cls = _resolve(full)
    assert issubclass(cls, enum.Enum) and issubclass(cls, str) and len(cls) > 0
    # Enum's class machinery installs Enum.__new__ (the lookup) on every enum class.
    enums = [k for k in cls.__mro__ if issubclass(k, enum.Enum) and k is not enum.Enum]
    assert all(vars(k).get("__new__", enum.Enum.__new__) is enum.Enum.__new__ for k in enums)
    assert cls._missing_.__func__ in (  # type: ignore[attr-defined]
        enum.Enum._missing_.__func__,  # type: ignore[attr-defined]
        ExplicitEnum.__dict__["_missing_"].__func__,
    )
    for hook in _HOOKS:
        owner = next(k for k in cls.__mro__ if hook in k.__dict__ or k is object)
        assert owner in (enum.Enum, str, object), (full, owner, hook)
    member = next(iter(cls))
    assert pickle.loads(pickle.dumps(member)) is member
    with pytest.raises(ValueError):
        cls("not-a-member")
    # More arguments ask for the functional API: refused for an enum with members.
    with pytest.raises(TypeError):
        cls("Made", "a b")


@pytest.mark.parametrize("full", sorted(TRANSFORMERS_TRAINING_CLASSES))
def test_a_listed_class_is_rebuilt_without_calling_anything(full: str) -> None:
    cls = _resolve(full)
    assert cls.__new__ is object.__new__, full
    for hook in _HOOKS:
        owner = next(k for k in cls.__mro__ if hook in k.__dict__ or k is object)
        assert owner is object or (owner.__name__, hook) in _ARGUED_HOOKS, (full, hook)
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if hasattr(type(value), "__set__") and not name.startswith("__"):
                # A settable descriptor would run code for a `setattr` from BUILD's state.
                assert isinstance(value, property) and value.fset is None, (full, name)


@pytest.mark.parametrize(
    "full",
    [
        "transformers.trainer.Trainer",
        "transformers.trainer_seq2seq.Seq2SeqTrainer",
        "transformers.generation.configuration_utils.CompileConfig",
        "transformers.generation.configuration_utils.WatermarkingConfig",
        "transformers.generation.configuration_utils.GenerationMode",
        # Only older releases have these: no test can read their code.
        "transformers.trainer_utils.ShardedDDPOption",
        "transformers.trainer_utils.EvaluationStrategy",
        # Run-dependent objects with behaviour.
        "transformers.integrations.deepspeed.HfTrainerDeepSpeedConfig",
        "accelerate.utils.dataclasses.DeepSpeedPlugin",
        "transformers.utils.generic.ExplicitEnum",
        "transformers.models.gpt2.modeling_gpt2.GPT2LMHeadModel",
        "transformers.models.gpt2.configuration_gpt2.GPT2Config",
        "transformers.hf_argparser.HfArgumentParser",
        "accelerate.state.AcceleratorState",
        "accelerate.accelerator.Accelerator",
    ],
)
def test_other_transformers_and_accelerate_classes_stay_flagged(full: str) -> None:
    module, name = full.rsplit(".", 1)
    assert classify(module, name) is not GlobalClass.SAFE


def _digest(function: Callable[..., object]) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


ARGUED: list[tuple[Callable[..., object], str]] = [
    (ExplicitEnum.__dict__["_missing_"].__func__, "8a5a9ea9b922bddb"),
    (accelerate_state.PartialState.__getattr__, "ec55e18906b49c1f"),
    # What a GenerationConfig used as a dict key runs (its hash and equality serialise it).
    (transformers.GenerationConfig.__hash__, "2539e60955a2d519"),
    (transformers.GenerationConfig.__eq__, "2048e4f63ea27479"),
    (transformers.GenerationConfig.to_json_string, "8a63443d24a924d6"),
    (transformers.GenerationConfig.to_dict, "bffe6ea1633c9a16"),
    (transformers.GenerationConfig.to_diff_dict, "ae85d637a45e19ca"),
    (transformers.GenerationConfig.dict_dtype_to_str, "2006cd30669689f2"),
]


@pytest.mark.parametrize(("function", "digest"), ARGUED, ids=[f.__qualname__ for f, _ in ARGUED])
def test_the_code_argued_is_unchanged(function: Callable[..., object], digest: str) -> None:
    assert _digest(function) == digest, (
        f"{function.__qualname__} changed: re-read it, re-argue docs/scanners.md, update the digest"
    )
