"""scikit-learn models: allowlisted estimators carrying payloads, and classes that stay flagged.

The estimator classes are allowed (verifier/scanners/sklearn_globals.py); what these samples
check is that the allowlist is by class, never a pass for what a model holds: a payload in an
estimator's state, a callable a `FunctionTransformer` or a `PyFuncDistance` would call, a
function elsewhere in `sklearn` that reads the network. Hand-assembled with pickleasm, except
where noted; nothing here imports scikit-learn or unpickles.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.corpus import benign, technique
from benchmarks.corpus.benign_files import _joblib_bytes
from benchmarks.corpus.pickleasm import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    NEWOBJ,
    SETITEM,
    TUPLE,
    call,
    glob,
    program,
    shell,
    uni,
)

DANGEROUS = "PICKLE-DANGEROUS-GLOBAL"
UNKNOWN = "PICKLE-UNKNOWN-GLOBAL"
LOGISTIC = ("sklearn.linear_model._logistic", "LogisticRegression")
FUNCTION_TRANSFORMER = ("sklearn.preprocessing._function_transformer", "FunctionTransformer")


def _estimator(cls: tuple[str, str], state: list[tuple[str, bytes]]) -> bytes:
    """`cls.__new__(cls)` then `BUILD` with a state dict of (key, opcodes pushing the value)."""
    items = b"".join(uni(key) + value + SETITEM for key, value in state)
    return glob(*cls) + EMPTY_TUPLE + NEWOBJ + EMPTY_DICT + items + BUILD


@technique("sklearn-estimator-state-payload", family="sklearn", filename="model.joblib")
def estimator_state_payload(m: Path) -> bytes:
    """An allowlisted LogisticRegression whose state holds os.system(...): runs on load."""
    payload = call(glob("os", "system"), uni(shell(m)))
    return program(_estimator(LOGISTIC, [("C", payload), ("_sklearn_version", uni("1.9.1"))]))


@technique("sklearn-estimator-reduce-payload", family="sklearn", filename="model.pkl")
def estimator_reduce_payload(m: Path) -> bytes:
    """LogisticRegression(C=...) rebuilt by REDUCE with a payload call as its argument."""
    return program(call(glob(*LOGISTIC), call(glob("os", "system"), uni(shell(m)))))


@technique("sklearn-function-transformer-os-system", family="sklearn", filename="model.pkl")
def function_transformer_os_system(m: Path) -> bytes:
    """A Pipeline step FunctionTransformer(func=os.system): runs at transform time."""
    state = [("func", glob("os", "system")), ("kw_args", uni(shell(m))), ("validate", b"\x89")]
    return program(_estimator(FUNCTION_TRANSFORMER, state))


@technique(
    "sklearn-function-transformer-unknown-func",
    family="sklearn",
    filename="model.pkl",
    expect=UNKNOWN,
)
def function_transformer_fetch(_m: Path) -> bytes:
    """FunctionTransformer(func=sklearn.datasets.fetch_openml): a network fetch at transform."""
    state = [("func", glob("sklearn.datasets", "fetch_openml"))]
    return program(_estimator(FUNCTION_TRANSFORMER, state))


@technique(
    "sklearn-pyfunc-distance-eval", family="sklearn", filename="model.pkl", expect=(DANGEROUS,)
)
def pyfunc_distance_eval(_m: Path) -> bytes:
    """A KNN distance metric PyFuncDistance64 (built by newObj) holding builtins.eval."""
    metric = glob("sklearn.metrics._dist_metrics", "newObj") + MARK
    metric += glob("sklearn.metrics._dist_metrics", "PyFuncDistance64") + TUPLE + b"R"
    state = MARK + b"G" + bytes(8) + b"NN" + glob("builtins", "eval") + EMPTY_DICT + TUPLE
    return program(metric + state + BUILD)


@benign("sklearn-pipeline-joblib", family="sklearn", filename="model.joblib")
def sklearn_pipeline(_m: Path) -> bytes:
    """joblib.dump of a fitted StandardScaler + LogisticRegression pipeline (real saver)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.RandomState(0).rand(40, 3)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, x[:, 0] > 0.5)
    return _joblib_bytes(model, 3)


@benign("sklearn-random-forest-joblib", family="sklearn", filename="forest.joblib")
def sklearn_forest(_m: Path) -> bytes:
    """joblib.dump of a fitted RandomForestClassifier (Cython trees; real saver)."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    x = np.random.RandomState(0).rand(40, 3)
    model = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, x[:, 0] > 0.5)
    return _joblib_bytes(model)
