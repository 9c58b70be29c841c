"""Benign files written by the real savers (torch, numpy, joblib, Keras, transformers).

The scanner's allowlist is calibrated on what frameworks write, not on hand-made pickles:
every sample here is produced by the library call a user's training code makes
(`torch.save`, `torch.jit.save`, `numpy.save`, `joblib.dump`, ...), with the objects real
checkpoints hold. `tests/scanners/test_real_savers.py` scans each one with the default policy
and requires no denial. A sample is a function registered with `@sample`; it writes one or
more files into the folder it is given.

Run `python -m tests.scanners.real_savers OUT` to write the whole corpus to `OUT/<name>/`.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import os
import pathlib
import pickle
import random
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import torch

Builder = Callable[[Path], None]


@dataclass(frozen=True)
class RealSample:
    """One benign sample: a name (the test id) and the saver call that writes it."""

    name: str
    saver: str
    build: Builder
    #: Medium findings the sample must carry (what the file is, reported for review).
    warns: frozenset[str] = frozenset()


SAMPLES: dict[str, RealSample] = {}


def sample(
    name: str, *, saver: str, warns: frozenset[str] = frozenset()
) -> Callable[[Builder], Builder]:
    """Register a builder under `name`; `saver` names the library call it makes."""

    def register(build: Builder) -> Builder:
        if name in SAMPLES:
            raise ValueError(f"duplicate real-saver sample {name}")
        SAMPLES[name] = RealSample(name, saver, build, warns)
        return build

    return register


def _torch_save(obj: object, path: Path, **kwargs: object) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, path, **kwargs)  # type: ignore[arg-type]


# --- torch.save: every dtype ---------------------------------------------------------------

#: Every dtype torch.save writes (the sub-byte `uint1`..`int7` have no storage type: torch
#: itself refuses to save them).
TORCH_DTYPES = [
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "float8_e4m3fn",
    "float8_e5m2",
    "float8_e4m3fnuz",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "float4_e2m1fn_x2",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "complex32",
    "complex64",
    "complex128",
    "bool",
    "bits8",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
]


def _tensor_of(dtype_name: str) -> torch.Tensor:
    dtype = getattr(torch, dtype_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.zeros(2, 3, dtype=dtype)
        except (RuntimeError, TypeError):
            return torch.empty(2, 3, dtype=dtype)  # bits types have no fill kernel


def _dtype_builder(dtype_name: str) -> Builder:
    def build(out: Path) -> None:
        tensor = _tensor_of(dtype_name)
        _torch_save({"weight": tensor, "view": tensor[1:]}, out / "pytorch_model.bin")

    return build


for _name in TORCH_DTYPES:
    sample(f"torch-save-dtype-{_name}", saver="torch.save")(_dtype_builder(_name))


@sample("torch-save-legacy-format-dtypes", saver="torch.save(_use_new_zipfile_serialization=False)")
def _legacy(out: Path) -> None:
    state = {name: _tensor_of(name) for name in ("float32", "float16", "bfloat16", "int64")}
    _torch_save(state, out / "legacy.bin", _use_new_zipfile_serialization=False)


# --- torch.save: quantised tensors and layouts ---------------------------------------------


@sample("torch-save-quantized-per-tensor", saver="torch.save")
def _quantized_per_tensor(out: Path) -> None:
    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    state = {
        "qint8": torch.quantize_per_tensor(x, 0.1, 0, torch.qint8),
        "quint8": torch.quantize_per_tensor(x, 0.1, 10, torch.quint8),
        "qint32": torch.quantize_per_tensor(x, 0.1, 0, torch.qint32),
    }
    _torch_save(state, out / "quantized.pt")


@sample("torch-save-quantized-per-channel", saver="torch.save")
def _quantized_per_channel(out: Path) -> None:
    x = torch.linspace(-1, 1, 12).reshape(3, 4)
    scales = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    zero_points = torch.tensor([0, 1, 2], dtype=torch.int64)
    state = {
        "qint8": torch.quantize_per_channel(x, scales, zero_points * 0, 0, torch.qint8),
        "quint8": torch.quantize_per_channel(x, scales, zero_points, 0, torch.quint8),
    }
    _torch_save(state, out / "quantized_per_channel.pt")


@sample("torch-save-quantized-linear-module", saver="torch.save")
def _quantized_module(out: Path) -> None:
    module = torch.ao.nn.quantized.Linear(4, 3)
    _torch_save(module.state_dict(), out / "quantized_linear.pt")


def _layout_builder(layout: str) -> Builder:
    def build(out: Path) -> None:
        dense = torch.tensor([[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 3.0]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sparse CSR/BSR "in beta" warnings
            if layout == "coo":
                tensor = dense.to_sparse()
            elif layout in ("csr", "csc"):
                tensor = getattr(dense, f"to_sparse_{layout}")()
            else:
                tensor = getattr(dense, f"to_sparse_{layout}")((1, 2))
        _torch_save({"sparse": tensor}, out / f"sparse_{layout}.pt")

    return build


for _layout in ("coo", "csr", "csc", "bsr", "bsc"):
    sample(f"torch-save-sparse-{_layout}", saver="torch.save")(_layout_builder(_layout))


# --- torch.save: modules, containers, training state ---------------------------------------


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8),
        torch.nn.LayerNorm(8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 2),
    )


def _trained() -> tuple[torch.nn.Module, list[torch.optim.Optimizer]]:
    model = _tiny_model()
    optimizers: list[torch.optim.Optimizer] = [
        torch.optim.Adam(model.parameters(), lr=1e-3),
        torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True),
        torch.optim.RMSprop(model.parameters(), lr=1e-3),
        torch.optim.Adagrad(model.parameters()),
    ]
    for optimizer in optimizers:
        for _ in range(2):
            optimizer.zero_grad()
            model(torch.ones(3, 4)).sum().backward()
            optimizer.step()
    return model, optimizers


@sample("torch-save-state-dict-and-parameters", saver="torch.save")
def _modules(out: Path) -> None:
    model = _tiny_model()
    _torch_save(model.state_dict(), out / "pytorch_model.bin")
    _torch_save(list(model.parameters()), out / "parameters.pt")
    _torch_save(torch.nn.Parameter(torch.ones(2), requires_grad=False), out / "parameter.pt")


@sample("torch-save-tensors-with-python-attributes", saver="torch.save")
def _attributes(out: Path) -> None:
    # A tensor carrying Python attributes is rebuilt by _rebuild_from_type_v2; a parameter
    # carrying them by _rebuild_parameter_with_state.
    tensor = torch.ones(3)
    tensor.note = "calibration"  # type: ignore[attr-defined]
    parameter = torch.nn.Parameter(torch.zeros(2))
    parameter.tied = True  # type: ignore[attr-defined]
    _torch_save({"tensor": tensor, "parameter": parameter}, out / "attributes.pt")


@sample("torch-save-nested-containers", saver="torch.save")
def _nested(out: Path) -> None:
    tensor = torch.arange(6.0).reshape(2, 3)
    state = {
        "list": [tensor, [tensor.T, (tensor[0], {"deep": [tensor[1:]]})]],
        "tuple": (1, 2.5, "three", None, True, b"bytes", bytearray(b"ba")),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "complex": complex(1, 2),
        "range": range(0, 10, 2),
        "slice": slice(1, 5, 2),
        "size": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "dtype": torch.float16,
        "layout": torch.sparse_coo,
        "ordered": collections.OrderedDict([("a", tensor)]),
        "counter": collections.Counter("abracadabra"),
        "defaultdict": collections.defaultdict(list, {"k": [1]}),
        "big_int": 2**100,
        "shared": [tensor, tensor],
    }
    _torch_save(state, out / "nested.pt")


@sample("torch-save-optimizer-state-dicts", saver="torch.save")
def _optimizers(out: Path) -> None:
    _, optimizers = _trained()
    for optimizer in optimizers:
        _torch_save(optimizer.state_dict(), out / f"{type(optimizer).__name__.lower()}.pt")


@sample("torch-save-lr-scheduler-state-dicts", saver="torch.save")
def _schedulers(out: Path) -> None:
    model = _tiny_model()
    sched = torch.optim.lr_scheduler

    def fresh() -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def warm(o: torch.optim.Optimizer) -> sched.LRScheduler:
        return sched.LinearLR(o, start_factor=0.1, total_iters=2)

    def cos(o: torch.optim.Optimizer) -> sched.LRScheduler:
        return sched.CosineAnnealingLR(o, T_max=10)

    builders: dict[str, Callable[[torch.optim.Optimizer], object]] = {
        "step": lambda o: sched.StepLR(o, step_size=2, gamma=0.5),
        "multistep": lambda o: sched.MultiStepLR(o, milestones=[1, 3]),
        "exponential": lambda o: sched.ExponentialLR(o, gamma=0.9),
        "cosine": cos,
        "cosine-warm-restarts": lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=3),
        "linear": warm,
        "lambda": lambda o: sched.LambdaLR(o, lr_lambda=lambda step: 0.95**step),
        "onecycle": lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=20),
        "cyclic": lambda o: sched.CyclicLR(o, base_lr=0.01, max_lr=0.1),
        "plateau": lambda o: sched.ReduceLROnPlateau(o),
        "sequential": lambda o: sched.SequentialLR(o, schedulers=[warm(o), cos(o)], milestones=[2]),
    }
    for name, make in builders.items():
        optimizer = fresh()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step() before optimizer.step()" and the like
            scheduler = make(optimizer)
            for _ in range(3):
                optimizer.step()
                if isinstance(scheduler, sched.ReduceLROnPlateau):
                    scheduler.step(1.0)
                else:
                    scheduler.step()  # type: ignore[attr-defined]
        state = scheduler.state_dict()  # type: ignore[attr-defined]
        _torch_save(state, out / f"scheduler-{name}.pt")


@sample("torch-save-hf-trainer-rng-state", saver="torch.save")
def _rng_state(out: Path) -> None:
    # As transformers.Trainer._save_rng_state writes it (rng_state.pth, one per process).
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "cpu": torch.random.get_rng_state(),
    }
    _torch_save(states, out / "rng_state.pth")
    _torch_save(states, out / "rng_state_1.pth")


@sample("torch-save-numpy-generators", saver="torch.save")
def _numpy_generators(out: Path) -> None:
    # Data loaders and samplers keep numpy Generator / RandomState objects in their state.
    state = {
        "generator": np.random.default_rng(0),
        "randomstate": np.random.RandomState(0),
        "seed_sequence": np.random.SeedSequence(1234),
        "bit_generators": [
            np.random.MT19937(1),
            np.random.PCG64(2),
            np.random.PCG64DXSM(3),
            np.random.Philox(4),
            np.random.SFC64(5),
        ],
        "generators": [np.random.Generator(np.random.Philox(6))],
        "torch_generator_state": torch.Generator().manual_seed(7).get_state(),
    }
    _torch_save(state, out / "sampler_state.pt")


@sample("torch-save-training-args-stdlib-types", saver="torch.save")
def _training_args(out: Path) -> None:
    args = types.SimpleNamespace(
        output_dir=pathlib.PurePosixPath("/runs/exp1"),
        logging_dir=pathlib.Path("runs") / "logs",
        windows_path=pathlib.PureWindowsPath(r"C:\runs\exp1"),
        learning_rate=decimal.Decimal("0.0003"),
        started=datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC),
        naive_started=datetime.datetime(2026, 12, 4, 12, 0),
        offset_started=datetime.datetime(
            2026, 12, 4, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
        ),
        date=datetime.date(2026, 12, 4),
        time=datetime.time(12, 30),
        budget=datetime.timedelta(hours=3),
        label_counts=collections.Counter({"cat": 3, "dog": 5}),
        schedule=collections.OrderedDict(warmup=100, decay=1000),
        per_label=collections.defaultdict(int, {"cat": 1}),
        seeds=(1, 2, 3),
        tags={"fp16", "ddp"},
        nested=types.SimpleNamespace(beta1=0.9, beta2=0.999),
    )
    _torch_save(args, out / "training_args.bin")
    _torch_save({"args": vars(args), "epoch": 3, "global_step": 120}, out / "trainer_state.pt")


@sample("torch-save-full-training-checkpoint", saver="torch.save")
def _checkpoint(out: Path) -> None:
    model, optimizers = _trained()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizers[0], step_size=2)
    _torch_save(
        {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizers[0].state_dict(),
            "scheduler_state_dict": scheduler.state_dict(),
            "loss": torch.tensor(0.25),
            "rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "config": {"hidden": 8, "dropout": 0.1, "path": pathlib.PurePosixPath("/data")},
            "array": np.arange(4, dtype=np.float32),
        },
        out / "checkpoint.pt",
    )


# --- every pickle protocol: torch.save, joblib.dump, pickle.dump ---------------------------


def _training_state() -> dict[str, object]:
    """What a hand-written training loop checkpoints besides its weights."""
    random.seed(1)
    return {
        "weights": _tiny_model().state_dict(),
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "numpy_rng": np.random.get_state(),
        "generator": np.random.default_rng(2),
        "python_rng": random.getstate(),
        "args": types.SimpleNamespace(lr=decimal.Decimal("0.001"), out=pathlib.PurePosixPath("o")),
        "when": datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC),
        "counts": collections.Counter("abc"),
        "per_key": collections.defaultdict(int, {"a": 1}),
        "range": range(3),
    }


def _protocol_builder(saver: str, protocol: int) -> Builder:
    def build(out: Path) -> None:
        state = _training_state()
        if saver == "torch.save":
            _torch_save(state, out / "checkpoint.pt", pickle_protocol=protocol)
        elif saver == "joblib.dump":
            joblib.dump(state, out / "checkpoint.joblib", protocol=protocol)
        else:
            del state["weights"]  # tensors pickled by pickle.dump hold their storage inline
            with (out / "checkpoint.pkl").open("wb") as handle:
                pickle.dump(state, handle, protocol=protocol)

    return build


for _protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
    for _saver in ("torch.save", "joblib.dump"):
        sample(
            f"{_saver.replace('.', '-').replace('_', '-')}-protocol-{_protocol}",
            saver=f"{_saver}(protocol={_protocol})",
        )(_protocol_builder(_saver, _protocol))
for _protocol in range(pickle.HIGHEST_PROTOCOL + 1):
    sample(f"pickle-dump-protocol-{_protocol}", saver=f"pickle.dump(protocol={_protocol})")(
        _protocol_builder("pickle.dump", _protocol)
    )


# --- torch.jit.save: TorchScript archives -------------------------------------------------


class ScriptedBlock(torch.nn.Module):
    """A small module with a submodule, a buffer, an attribute and control flow."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.register_buffer("offset", torch.ones(3))
        self.label = "block"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.linear(x)) + self.offset
        if bool(y.sum() > 0):
            y = torch.relu(y)
        return y


class StatefulScript(torch.nn.Module):
    """A scripted module with its own __getstate__/__setstate__ (run by torch.jit.load)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    @torch.jit.export
    def __getstate__(self) -> tuple[float, bool]:
        return (self.scale, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[float, bool]) -> None:
        self.scale = state[0]
        self.training = state[1]


TORCHSCRIPT = frozenset({"TORCHSCRIPT-CODE"})


@sample("torch-jit-save-scripted-module", saver="torch.jit.save", warns=TORCHSCRIPT)
def _scripted(out: Path) -> None:
    module = torch.jit.script(ScriptedBlock())
    torch.jit.save(module, str(out / "model.pt"), _extra_files={"meta.json": b'{"v": 1}'})


@sample("torch-jit-save-traced-module", saver="torch.jit.save", warns=TORCHSCRIPT)
def _traced(out: Path) -> None:
    model = _tiny_model().eval()
    traced = torch.jit.trace(model, torch.ones(1, 4))
    torch.jit.save(traced, str(out / "traced.pt"))


@sample("torch-jit-save-setstate", saver="torch.jit.save", warns=TORCHSCRIPT)
def _stateful(out: Path) -> None:
    torch.jit.save(torch.jit.script(StatefulScript()), str(out / "stateful.pt"))


# --- joblib.dump: numpy arrays of every dtype, every compressor ----------------------------

JOBLIB_COMPRESSORS = ["zlib", "gzip", "bz2", "lzma", "xz", "lz4"]
#: The file extensions from which joblib.dump picks a compressor itself (`compress=0`).
JOBLIB_EXTENSIONS = ["z", "gz", "bz2", "lzma", "xz", "lz4"]


def numpy_arrays() -> dict[str, object]:
    """Arrays of every dtype numpy offers apart from object: what joblib and numpy save."""
    point = np.dtype([("x", "<f4"), ("y", "<f4")])
    nested = np.dtype([("id", "<i8"), ("pos", point), ("tags", "S4", (2,)), ("w", "<f8", (2, 2))])
    arrays: dict[str, object] = {
        "bool": np.array([True, False]),
        "int8": np.arange(4, dtype=np.int8),
        "int16": np.arange(4, dtype=np.int16),
        "int32": np.arange(4, dtype=np.int32),
        "int64": np.arange(4, dtype=np.int64),
        "uint8": np.arange(4, dtype=np.uint8),
        "uint16": np.arange(4, dtype=np.uint16),
        "uint32": np.arange(4, dtype=np.uint32),
        "uint64": np.arange(4, dtype=np.uint64),
        "float16": np.linspace(0, 1, 4, dtype=np.float16),
        "float32": np.linspace(0, 1, 4, dtype=np.float32),
        "float64": np.linspace(0, 1, 4, dtype=np.float64),
        "longdouble": np.linspace(0, 1, 4, dtype=np.longdouble),
        "complex64": np.ones(3, dtype=np.complex64),
        "complex128": np.ones(3, dtype=np.complex128),
        "clongdouble": np.ones(3, dtype=np.clongdouble),
        "big-endian": np.arange(4, dtype=">i4"),
        "datetime64": np.array(["2026-12-04", "2026-12-05"], dtype="datetime64[D]"),
        "timedelta64": np.array([1, 2], dtype="timedelta64[s]"),
        "bytes": np.array([b"ab", b"cde"], dtype="S3"),
        "unicode": np.array(["ab", "cdé"], dtype="U3"),
        "void": np.zeros(2, dtype="V5"),
        "structured": np.zeros(3, dtype=point),
        "nested-structured": np.zeros(2, dtype=nested),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.float64(2.5),
        "zero-dim": np.array(7, dtype=np.int32),
    }
    return arrays


def joblib_only_arrays() -> dict[str, object]:
    """Arrays joblib pickles but numpy.save cannot write without pickling (or at all)."""
    return {
        "masked": np.ma.masked_array([1.0, 2.0, 3.0], mask=[False, True, False]),
        "masked-structured": np.ma.masked_array(
            np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]), mask=[(False, True), (True, False)]
        ),
        "string-dtype": np.array(["variable", "width", "strings"], dtype=np.dtypes.StringDType()),
    }


def _joblib_builder(compress: str | None, names: list[str] | None) -> Builder:
    def build(out: Path) -> None:
        arrays = {**numpy_arrays(), **joblib_only_arrays()}
        if names is not None:
            arrays = {k: arrays[k] for k in names}
        kwargs: dict[str, object] = {} if compress is None else {"compress": (compress, 3)}
        joblib.dump(arrays, out / "arrays.joblib", **kwargs)  # type: ignore[arg-type]

    return build


for _key in [*numpy_arrays(), *joblib_only_arrays()]:
    sample(f"joblib-dump-{_key}", saver="joblib.dump")(_joblib_builder(None, [_key]))
for _compress in JOBLIB_COMPRESSORS:
    sample(f"joblib-dump-all-dtypes-{_compress}", saver=f"joblib.dump(compress={_compress!r})")(
        _joblib_builder(_compress, None)
    )


def _joblib_named_builder(file_name: str, compress: object) -> Builder:
    """What users write: a model-like object compressed under a pickle's or joblib's name."""

    def build(out: Path) -> None:
        model = {"coef": np.linspace(-1, 1, 64).reshape(8, 8), "classes": np.arange(8), "n": 8}
        kwargs: dict[str, object] = {} if compress is None else {"compress": compress}
        joblib.dump(model, out / file_name, **kwargs)  # type: ignore[arg-type]

    return build


# `joblib.dump(model, "model.pkl", compress=3)` is the documented idiom: a zlib stream under a
# pickle's name. Every compressor, under `.pkl` and `.joblib`, and chosen by the extension.
sample("joblib-dump-compress-3-pkl", saver="joblib.dump(compress=3)")(
    _joblib_named_builder("model.pkl", 3)
)
for _compress in JOBLIB_COMPRESSORS:
    for _suffix in ("pkl", "joblib"):
        sample(
            f"joblib-dump-{_compress}-{_suffix}",
            saver=f"joblib.dump('model.{_suffix}', compress=({_compress!r}, 3))",
        )(_joblib_named_builder(f"model.{_suffix}", (_compress, 3)))
for _extension in JOBLIB_EXTENSIONS:
    sample(f"joblib-dump-pkl-{_extension}", saver=f"joblib.dump('model.pkl.{_extension}')")(
        _joblib_named_builder(f"model.pkl.{_extension}", None)
    )


@sample("joblib-dump-training-state", saver="joblib.dump")
def _joblib_state(out: Path) -> None:
    joblib.dump(
        {
            "weights": [np.ones((2, 2)), np.zeros(3, dtype=np.float32)],
            "rng": np.random.RandomState(0),
            "generator": np.random.default_rng(1),
            "numpy_rng_state": np.random.get_state(),
            "counts": collections.Counter("hello"),
            "when": datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC),
            "path": pathlib.PurePosixPath("/data/train"),
        },
        out / "state.joblib",
    )


# --- scikit-learn estimators and pipelines, joblib.dump and pickle.dump ---------------------


def _sklearn_model(key: str) -> object:
    """A fitted estimator as users save them: linear, trees, ensembles, pipelines, search."""
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB, MultinomialNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import (
        LabelEncoder,
        MinMaxScaler,
        OneHotEncoder,
        PolynomialFeatures,
        StandardScaler,
    )
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.RandomState(0)
    x = rng.rand(60, 4)
    y = (x[:, 0] > 0.5).astype(int)
    mixed = np.c_[x[:, :2], (x[:, 2] * 3).astype(int)]
    docs = ["apple banana", "banana cherry", "cherry date apple"] * 4
    columns = ColumnTransformer(
        [("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(handle_unknown="ignore"), [2])]
    )
    fits: dict[str, Callable[[], object]] = {
        "logistic-regression": lambda: LogisticRegression().fit(x, y),
        "random-forest": lambda: RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y),
        "random-forest-regressor": lambda: RandomForestRegressor(
            n_estimators=2, random_state=0
        ).fit(x, x[:, 1]),
        "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=3).fit(x, y),
        "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "isolation-forest": lambda: IsolationForest(n_estimators=2, random_state=0).fit(x),
        "pipeline-scaler-logistic": lambda: make_pipeline(
            StandardScaler(), LogisticRegression()
        ).fit(x, y),
        "pipeline-column-transformer": lambda: Pipeline(
            [("columns", columns), ("clf", LogisticRegression())]
        ).fit(mixed, y),
        "pipeline-imputer-tree": lambda: make_pipeline(
            SimpleImputer(), MinMaxScaler(), PolynomialFeatures(), DecisionTreeClassifier()
        ).fit(x, y),
        "pipeline-tfidf-naive-bayes": lambda: make_pipeline(TfidfVectorizer(), MultinomialNB()).fit(
            docs, [0, 1, 0] * 4
        ),
        "svc": lambda: SVC(probability=True, random_state=0).fit(x, y),
        "k-neighbors": lambda: KNeighborsClassifier().fit(x, y),
        "k-means": lambda: KMeans(2, n_init=1, random_state=0).fit(x),
        "pca": lambda: PCA(2).fit(x),
        "mlp": lambda: MLPClassifier(max_iter=5, random_state=0).fit(x, y),
        "sgd": lambda: SGDClassifier(random_state=0).fit(x, y),
        "ridge": lambda: Ridge().fit(x, y),
        "gaussian-nb": lambda: GaussianNB().fit(x, y),
        "label-encoder": lambda: LabelEncoder().fit(["cat", "dog"]),
        "grid-search": lambda: GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(
            x, y
        ),
    }
    return fits[key]()


SKLEARN_MODELS = [
    "logistic-regression", "random-forest", "random-forest-regressor", "gradient-boosting",
    "hist-gradient-boosting", "isolation-forest", "pipeline-scaler-logistic",
    "pipeline-column-transformer", "pipeline-imputer-tree", "pipeline-tfidf-naive-bayes", "svc",
    "k-neighbors", "k-means", "pca", "mlp", "sgd", "ridge", "gaussian-nb", "label-encoder",
    "grid-search",
]  # fmt: skip


def _sklearn_builder(key: str, saver: str) -> Builder:
    def build(out: Path) -> None:
        model = _sklearn_model(key)
        if saver == "joblib":
            joblib.dump(model, out / "model.joblib")
        elif saver == "joblib-compressed":
            joblib.dump(model, out / "model.pkl", compress=3)
        else:
            with (out / "model.pkl").open("wb") as handle:
                pickle.dump(model, handle, protocol=pickle.HIGHEST_PROTOCOL)

    return build


for _key in SKLEARN_MODELS:
    sample(f"sklearn-{_key}-joblib", saver="joblib.dump(estimator)")(
        _sklearn_builder(_key, "joblib")
    )
for _key in ("pipeline-scaler-logistic", "random-forest", "pipeline-tfidf-naive-bayes"):
    sample(f"sklearn-{_key}-pickle", saver="pickle.dump(estimator)")(
        _sklearn_builder(_key, "pickle")
    )
    sample(f"sklearn-{_key}-joblib-compress-3", saver="joblib.dump(estimator, compress=3)")(
        _sklearn_builder(_key, "joblib-compressed")
    )


# --- numpy.save / savez: every non-object dtype ------------------------------------------


def _npy_builder(key: str) -> Builder:
    def build(out: Path) -> None:
        np.save(out / "array.npy", numpy_arrays()[key], allow_pickle=False)

    return build


for _key in numpy_arrays():
    sample(f"numpy-save-{_key}", saver="numpy.save")(_npy_builder(_key))


@sample("numpy-savez-all-dtypes", saver="numpy.savez")
def _savez(out: Path) -> None:
    arrays = {k.replace("-", "_"): v for k, v in numpy_arrays().items()}
    np.savez(out / "arrays.npz", **arrays)  # type: ignore[arg-type]


@sample("numpy-savez-compressed-all-dtypes", saver="numpy.savez_compressed")
def _savez_compressed(out: Path) -> None:
    arrays = {k.replace("-", "_"): v for k, v in numpy_arrays().items()}
    np.savez_compressed(out / "arrays.npz", **arrays)  # type: ignore[arg-type]


# --- other formats' real writers: safetensors, ONNX, GGUF ----------------------------------


@sample("safetensors-torch-save-file-and-model", saver="safetensors.torch.save_file")
def _safetensors(out: Path) -> None:
    from safetensors.numpy import save_file as save_numpy
    from safetensors.torch import save_file, save_model

    model = _tiny_model()
    save_file(model.state_dict(), out / "model.safetensors", metadata={"format": "pt"})
    save_model(model, str(out / "model-saved.safetensors"))
    save_numpy({"a": np.arange(4, dtype=np.float16)}, out / "arrays.safetensors")


@sample("onnx-torch-onnx-export", saver="torch.onnx.export")
def _onnx(out: Path) -> None:
    torch.onnx.export(
        _tiny_model().eval(), (torch.ones(1, 4),), str(out / "model.onnx"), dynamo=False
    )


def _gguf_builder(family: str, template: str) -> Builder:
    def build(out: Path) -> None:
        import gguf

        writer = gguf.GGUFWriter(str(out / "model.gguf"), "llama")
        writer.add_name(f"tiny-{family}")
        writer.add_context_length(128)
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(["<s>", "</s>", "a", "b"])
        writer.add_chat_template(template)
        writer.add_tensor("token_embd.weight", np.ones((4, 8), dtype=np.float32))
        writer.add_tensor("output.weight", np.zeros((4, 8), dtype=np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    return build


def _register_gguf() -> None:
    from benchmarks.corpus.chat_templates import BENIGN as FAMILY_TEMPLATES

    for family, template in FAMILY_TEMPLATES.items():
        sample(f"gguf-writer-{family}", saver="gguf.GGUFWriter")(_gguf_builder(family, template))


_register_gguf()


# --- Keras: model.save (.keras and legacy .h5) and save_weights, with a trained optimizer ----


def _keras() -> Any:
    # The suite installs Keras with the torch backend only (no TensorFlow).
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


def _keras_model(key: str) -> Any:
    """A built-in-layer model, compiled and fitted one step (so the optimizer has state)."""
    keras = _keras()
    if key == "functional-adam":
        inputs = keras.Input((4,))
        x = keras.layers.Dense(3, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
        optimizer = keras.optimizers.Adam(1e-3)
    else:
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(4, kernel_regularizer=keras.regularizers.L2()),
                keras.layers.BatchNormalization(),
                keras.layers.Dropout(0.1),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
        schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 10, 0.9)
        optimizer = keras.optimizers.AdamW(schedule)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", keras.metrics.SparseCategoricalAccuracy()],
    )
    model.fit(np.ones((4, 4)), np.zeros(4), epochs=1, batch_size=4, verbose=0)
    return model


def _keras_builder(key: str, suffix: str) -> Builder:
    def build(out: Path) -> None:
        model = _keras_model(key)
        if suffix == ".weights.h5":
            model.save_weights(str(out / f"model{suffix}"))
        else:
            model.save(str(out / f"model{suffix}"))

    return build


KERAS_SUFFIXES = {".keras": "keras", ".h5": "h5", ".weights.h5": "weights-h5"}
for _key in ("functional-adam", "sequential-adamw-schedule"):
    for _suffix, _label in KERAS_SUFFIXES.items():
        _call = "Model.save_weights" if _suffix == ".weights.h5" else "Model.save"
        sample(f"keras-{_key}-{_label}", saver=f"keras {_call}(model{_suffix})")(
            _keras_builder(_key, _suffix)
        )


# --- transformers.Trainer: a whole checkpoint folder ---------------------------------------

#: What `Trainer._save_checkpoint` writes into `checkpoint-N/` on the CPU.
TRAINER_CHECKPOINT_FILES = frozenset(
    {
        "config.json",
        "model.safetensors",
        "optimizer.pt",
        "scheduler.pt",
        "rng_state.pth",
        "training_args.bin",
        "trainer_state.json",
    }
)


@sample("transformers-trainer-checkpoint", saver="transformers.Trainer(save_steps=2).train()")
def _trainer_checkpoint(out: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")  # Trainer needs it
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16)
    model = transformers.GPT2LMHeadModel(config)  # random init from the config: no download
    tokens = torch.arange(8) % 64
    data = [{"input_ids": tokens, "labels": tokens} for _ in range(6)]
    args = transformers.TrainingArguments(
        output_dir=str(out),
        max_steps=2,
        save_steps=2,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
    )
    transformers.Trainer(model=model, args=args, train_dataset=data).train()


@sample(
    "transformers-seq2seq-trainer-checkpoint",
    saver="transformers.Seq2SeqTrainer(save_steps=2, generation_config=...).train()",
)
def _seq2seq_trainer_checkpoint(out: Path) -> None:
    # A tiny T5 from its config, with the GenerationConfig Seq2SeqTrainingArguments keeps.
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    torch.manual_seed(0)
    special = {"decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}
    config = transformers.T5Config(
        vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=2, **special
    )
    model = transformers.T5ForConditionalGeneration(config)
    tokens = torch.arange(2, 10)
    data = [{"input_ids": tokens, "labels": tokens} for _ in range(4)]
    args = transformers.Seq2SeqTrainingArguments(
        output_dir=str(out),
        max_steps=2,
        save_steps=2,
        per_device_train_batch_size=2,
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        logging_strategy="no",
        predict_with_generate=True,
        generation_config=transformers.GenerationConfig(max_new_tokens=4, num_beams=2, **special),
    )
    transformers.Seq2SeqTrainer(model=model, args=args, train_dataset=data).train()


# --- Lightning: Trainer checkpoints (.ckpt) in both package namespaces ----------------------

#: The two names Lightning installs under: the unified `lightning` package and the standalone
#: `pytorch_lightning` (what older code imports). A checkpoint's class paths follow the import.
LIGHTNING_NAMESPACES = {"lightning": "lightning.pytorch", "pytorch-lightning": "pytorch_lightning"}


def _lightning_trainer_builder(module: str) -> Builder:
    def build(out: Path) -> None:
        import argparse

        pl = pytest.importorskip(module)
        from torch.utils.data import DataLoader, TensorDataset

        class Data(pl.LightningDataModule):  # type: ignore[misc,name-defined]
            def __init__(self, batch_size: int = 2, root: str = "data") -> None:
                super().__init__()
                self.save_hyperparameters()
                self.seen = 0

            def train_dataloader(self) -> DataLoader[Any]:
                torch.manual_seed(0)
                data = TensorDataset(torch.randn(8, 4), torch.randn(8, 1))
                return DataLoader(data, batch_size=self.hparams.batch_size)

            def val_dataloader(self) -> DataLoader[Any]:
                return self.train_dataloader()

            def state_dict(self) -> dict[str, Any]:
                return {"seen": self.seen, "order": [1, 2]}

            def load_state_dict(self, state: dict[str, Any]) -> None:
                self.seen = state["seen"]

        class Regressor(pl.LightningModule):  # type: ignore[misc,name-defined]
            # `args` from argparse, as scripts pass it: save_hyperparameters keeps the Namespace.
            def __init__(
                self, args: argparse.Namespace, optim: dict[str, Any], layers: tuple[int, ...]
            ) -> None:
                super().__init__()
                self.save_hyperparameters()
                self.net = torch.nn.Sequential(
                    torch.nn.Linear(4, layers[0]), torch.nn.ReLU(), torch.nn.Linear(layers[0], 1)
                )

            def _loss(self, batch: Any) -> torch.Tensor:
                x, y = batch
                return torch.nn.functional.mse_loss(self.net(x), y)

            def training_step(self, batch: Any, index: int) -> torch.Tensor:
                loss = self._loss(batch)
                self.log("train_loss", loss)
                return loss

            def validation_step(self, batch: Any, index: int) -> None:
                self.log("val_loss", self._loss(batch))

            def configure_optimizers(self) -> dict[str, Any]:
                optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.args.lr)
                plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
                return {
                    "optimizer": optimizer,
                    "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"},
                }

        torch.manual_seed(0)
        args = argparse.Namespace(lr=1e-3, data=pathlib.PurePosixPath("data"), tags=["cpu"])
        model = Regressor(args, optim={"name": "adam", "betas": (0.9, 0.99)}, layers=(8, 8))
        callbacks = [
            pl.callbacks.ModelCheckpoint(
                dirpath=out, monitor="val_loss", save_last=True, save_top_k=2
            ),
            pl.callbacks.EarlyStopping(monitor="val_loss"),
            pl.callbacks.LearningRateMonitor(),
            pl.callbacks.Timer(),
            pl.callbacks.StochasticWeightAveraging(swa_lrs=1e-2, swa_epoch_start=1),
        ]
        trainer = pl.Trainer(
            max_steps=2,
            accelerator="cpu",
            devices=1,
            precision="bf16-mixed",
            logger=pl.loggers.CSVLogger(out / "logs"),
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=1,
            val_check_interval=2,
        )
        trainer.fit(model, datamodule=Data())
        trainer.save_checkpoint(out / "manual.ckpt")

    return build


for _label, _module in LIGHTNING_NAMESPACES.items():
    sample(f"{_label}-trainer-checkpoint", saver=f"{_module}.Trainer(max_steps=2).fit()")(
        _lightning_trainer_builder(_module)
    )


#: Fabric under each name: (its package, Lightning's parsing module, Fabric's data module).
FABRIC_NAMESPACES = {
    "lightning-fabric": (
        "lightning.fabric",
        "lightning.pytorch.utilities.parsing",
        "lightning.fabric.utilities.data",
    ),
    "lightning-fabric-standalone": (
        "lightning_fabric",
        "pytorch_lightning.utilities.parsing",
        "lightning_fabric.utilities.data",
    ),
}


def _fabric_builder(package: str, parsing: str, data: str) -> Builder:
    def build(out: Path) -> None:
        import argparse

        fabric_module = pytest.importorskip(package)
        attribute_dict = pytest.importorskip(parsing).AttributeDict
        fabric_dict = pytest.importorskip(data).AttributeDict
        fabric = fabric_module.Fabric(accelerator="cpu", devices=1)
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model, optimizer = fabric.setup(model, optimizer)
        for _ in range(2):
            optimizer.zero_grad()
            fabric.backward(model(torch.ones(2, 4)).sum())
            optimizer.step()
        # As Fabric's documentation saves a training state: an AttributeDict of the objects.
        state = attribute_dict(
            model=model,
            optimizer=optimizer,
            iteration=2,
            hparams=attribute_dict(lr=0.1, args=argparse.Namespace(batch_size=2)),
            loop=fabric_dict(epoch=0, seen=[attribute_dict(step=1)]),
        )
        fabric.save(out / "state.ckpt", state)

    return build


for _label, (_package, _parsing, _data) in FABRIC_NAMESPACES.items():
    sample(f"{_label}-save", saver=f"{_package}.Fabric.save(AttributeDict state)")(
        _fabric_builder(_package, _parsing, _data)
    )


def build(name: str, out: Path) -> Path:
    """Write sample `name` into a new folder `out/<name>` and return that folder."""
    folder = out / name
    folder.mkdir(parents=True)
    with warnings.catch_warnings():
        # Savers warn about experimental or deprecated dtypes (complex32, quantised tensors);
        # the suite turns warnings into errors, and warnings are not what these samples test.
        warnings.simplefilter("ignore")
        SAMPLES[name].build(folder)
    return folder


def build_all(out: Path) -> Iterator[Path]:
    """Write every sample under `out`."""
    for name in SAMPLES:
        yield build(name, out)


if __name__ == "__main__":
    for written in build_all(Path(sys.argv[1])):
        print(written)
