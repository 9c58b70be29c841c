"""scikit-learn classes are allowed by a written-out list, checked here against the library.

verifier never imports scikit-learn; `verifier/scanners/sklearn_globals.py` writes the names out
and argues them (docs/scanners.md, "scikit-learn"). This test fails when scikit-learn adds,
moves or drops an estimator, when a listed estimator's reconstruction could call something (an
`__init__` that calls more than the few builders below, a `__new__`, `__reduce__` or
`__setstate__` of its own beyond those argued), and when the code argued is changed (a digest of
its syntax tree: re-read it, re-argue the docs, then update the digest).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import textwrap
import warnings
from collections.abc import Callable

import pytest
import sklearn.base
import sklearn.frozen
import sklearn.isotonic
from sklearn.utils import all_estimators

from verifier.scanners.pickle_globals import GlobalClass, classify
from verifier.scanners.sklearn_globals import (
    EXCLUDED,
    SKLEARN_ESTIMATORS,
    SKLEARN_GLOBALS,
    SKLEARN_PARTS,
)


def _estimators() -> dict[str, type]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {f"{c.__module__}.{c.__qualname__}": c for _, c in all_estimators()}


def _resolve(full: str) -> object:
    module, name = full.rsplit(".", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(importlib.import_module(module), name)


def test_written_list_is_the_installed_estimators_but_the_excluded() -> None:
    live = set(_estimators())
    assert live >= EXCLUDED
    assert sorted(SKLEARN_ESTIMATORS ^ (live - EXCLUDED)) == []


@pytest.mark.parametrize("full", sorted(SKLEARN_PARTS))
def test_every_listed_part_exists(full: str) -> None:
    assert callable(_resolve(full))


@pytest.mark.parametrize("full", sorted(SKLEARN_GLOBALS))
def test_every_listed_name_is_allowed(full: str) -> None:
    module, name = full.rsplit(".", 1)
    assert classify(module, name) is GlobalClass.SAFE


@pytest.mark.parametrize(
    "full",
    [
        *sorted(EXCLUDED),
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
        "sklearn.metrics._dist_metrics.PyFuncDistance32",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.datasets._openml.fetch_openml",
        "sklearn.utils._testing.assert_run_python_script_without_output",
    ],
)
def test_what_calls_a_callable_or_does_io_is_not_allowed(full: str) -> None:
    module, name = full.rsplit(".", 1)
    assert classify(module, name) is not GlobalClass.SAFE


#: Calls an allowed estimator's `__init__` (anywhere in its MRO) may make: storing parameters,
#: building default sub-estimators, checks and warnings. Nothing here calls an argument.
_INIT_CALLS = frozenset(
    {
        "super().__init__",
        "super",
        "isinstance",
        "tuple",
        "np.finfo",
        "ValueError",
        "warn",
        "warnings.warn",
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    }
)
#: The only reconstruction hooks a listed estimator may define beyond BaseEstimator's.
_ARGUED_HOOKS = {
    ("IsotonicRegression", "__setstate__"),
    ("PassiveAggressiveClassifier", "__new__"),
    ("PassiveAggressiveRegressor", "__new__"),
    # Reads an attribute of the estimator it wraps; unpickling finds `__setstate__` on the class.
    ("FrozenEstimator", "__getattr__"),
}
_HOOKS = ("__new__", "__reduce__", "__reduce_ex__", "__setstate__", "__getattr__", "__setattr__")


def _init_calls(cls: type) -> set[str]:
    calls: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        calls |= {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return calls


@pytest.mark.parametrize("full", sorted(SKLEARN_ESTIMATORS))
def test_a_listed_estimator_calls_nothing_it_is_given_when_rebuilt(full: str) -> None:
    cls = _resolve(full)
    assert isinstance(cls, type) and issubclass(cls, sklearn.base.BaseEstimator)
    assert _init_calls(cls) <= _INIT_CALLS, full
    for hook in _HOOKS:
        owner = next((k for k in cls.__mro__ if hook in k.__dict__), object)
        if owner in (object, sklearn.base.BaseEstimator):
            continue
        assert (owner.__name__, hook) in _ARGUED_HOOKS, (full, owner, hook)


def _digest(function: Callable[..., object]) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


ARGUED: list[tuple[Callable[..., object], str]] = [
    (sklearn.base.BaseEstimator.__setstate__, "8c033d1c07888726"),
    (sklearn.isotonic.IsotonicRegression.__setstate__, "48ec538106f438a4"),
    (sklearn.isotonic.IsotonicRegression._build_f, "16213c3a6f602990"),
    (sklearn.frozen.FrozenEstimator.__getattr__, "454abeec2c731d5b"),
]


@pytest.mark.parametrize(("function", "digest"), ARGUED, ids=[f.__qualname__ for f, _ in ARGUED])
def test_the_code_argued_is_unchanged(function: Callable[..., object], digest: str) -> None:
    assert _digest(function) == digest, (
        f"{function.__qualname__} changed: re-read it, re-argue docs/scanners.md, update the digest"
    )
