"""Every recorder has every ability the pipeline asks of one (`verifier.store.interface`).

`mypy --strict verifier` checks each place a recorder is handed to the pipeline; this checks
each recorder class itself, member by member of the protocol (read from the protocol, so an
ability added there is asked of every recorder here too), with the same parameters.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from types import FunctionType
from typing import Any, Generic, Protocol

import pytest

from verifier.service.jobs import JobRecorder
from verifier.store.database import Store
from verifier.store.interface import ScanRecorder, ScanStore
from verifier.store.sqlite_recorder import SQLiteRecorder

#: Each recorder with the protocol it is handed to the pipeline as.
RECORDERS: list[tuple[type[Any], type[Any]]] = [
    (Store, ScanStore),
    (SQLiteRecorder, ScanStore),
    (JobRecorder, ScanRecorder),
]


def protocol_members(protocol: type[Any]) -> dict[str, FunctionType]:
    """The methods `protocol` declares, with those of every protocol it combines."""
    members: dict[str, FunctionType] = {}
    for declaring in reversed(protocol.__mro__):
        if declaring in (object, Generic, Protocol):
            continue
        for name, value in vars(declaring).items():
            # Declared in the class body (not the methods `typing` adds to every protocol).
            if isinstance(value, FunctionType) and value.__qualname__.startswith(
                f"{declaring.__qualname__}."
            ):
                members[name] = value
    return members


def _parameters(function: object) -> list[tuple[str | None, inspect._ParameterKind, bool]]:
    """What a caller relies on: each parameter's kind, its name where a caller can name it,
    and whether it may be left out."""
    shape = []
    for parameter in inspect.signature(function).parameters.values():  # type: ignore[arg-type]
        named = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        optional = parameter.default is not parameter.empty
        shape.append((parameter.name if named else None, parameter.kind, optional))
    return shape


def lacking(recorder: type[Any], protocol: type[Any]) -> dict[str, str]:
    """The members of `protocol` that `recorder` lacks or declares with other parameters."""
    problems = {}
    for name, declared in protocol_members(protocol).items():
        found = inspect.getattr_static(recorder, name, None)
        if not isinstance(found, FunctionType):
            problems[name] = "missing"
        elif _parameters(found) != _parameters(declared):
            problems[name] = f"parameters {inspect.signature(found)}"
    return problems


def test_the_protocol_asks_for_every_ability_the_pipeline_uses() -> None:
    members = set(protocol_members(ScanRecorder))
    # The writes, the bans, verified lineage's references and the files verified before.
    assert {"record_scan", "record_failed_scan", "bans_reaching"} <= members
    assert {"lineage_key", "lineage_references", "identical_files"} <= members
    assert {"verified_file", "recorded_sha256"} <= members
    assert set(protocol_members(ScanStore)) == members | {"close", "__enter__", "__exit__"}


@pytest.mark.parametrize(
    ("recorder", "protocol"), RECORDERS, ids=[r.__name__ for r, _ in RECORDERS]
)
def test_every_recorder_has_every_ability(recorder: type[Any], protocol: type[Any]) -> None:
    assert lacking(recorder, protocol) == {}


@pytest.mark.parametrize("left_out", sorted(protocol_members(ScanRecorder)))
def test_a_recorder_without_one_ability_is_caught(left_out: str) -> None:
    methods = {
        name: inspect.getattr_static(JobRecorder, name)
        for name in protocol_members(ScanRecorder)
        if name != left_out
    }
    forgetful = type("Forgetful", (), methods)
    assert lacking(forgetful, ScanRecorder) == {left_out: "missing"}


def test_a_recorder_with_other_parameters_is_caught() -> None:
    def bans_reaching(self: object, facts: object, publishers: object) -> tuple[()]:
        return ()  # `publishers` positional: the pipeline passes it by keyword only

    methods = {name: inspect.getattr_static(JobRecorder, name) for name in dir(JobRecorder)}
    methods["bans_reaching"] = bans_reaching
    methods.pop("__dict__", None)
    methods.pop("__weakref__", None)
    loose = type("Loose", (), methods)
    assert set(lacking(loose, ScanRecorder)) == {"bans_reaching"}


def test_abilities_are_not_found_by_isinstance() -> None:
    # Found that way, a recorder without one made a scan quietly do less: every ability is
    # declared in `ScanRecorder` instead, and checked by the type checker.
    for ability in ScanRecorder.__mro__[1:]:
        if ability in (object, Generic, Protocol):
            continue
        with pytest.raises(TypeError):
            isinstance(object(), ability)


def test_the_interface_imports_no_pipeline_and_no_sqlalchemy() -> None:
    code = (
        "import sys, verifier.store.interface; "
        "print(sorted(m for m in ('verifier.pipeline', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
