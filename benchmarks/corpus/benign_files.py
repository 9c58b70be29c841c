"""Benign samples: real checkpoints and arrays written by their own libraries."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

from benchmarks.corpus import benign


def _torch_bytes(obj: object, *, zip_format: bool, protocol: int = 2) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=zip_format, pickle_protocol=protocol)
    return buffer.getvalue()


def _state_dict(dtype_name: str) -> dict[str, object]:
    import torch

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    layer = torch.nn.Linear(8, 4)
    state: dict[str, object] = {k: v.to(dtype) for k, v in layer.state_dict().items()}
    return state


for _dtype in ("float32", "float16", "bfloat16", "float64", "int8", "int32", "int64", "bool"):

    def _zip(_m: Path, dtype: str = _dtype) -> bytes:
        return _torch_bytes(_state_dict(dtype), zip_format=True)

    benign(f"torch-zip-state-dict-{_dtype}", family="torch", filename="pytorch_model.bin")(_zip)

for _dtype in ("float32", "float16", "bfloat16", "int64"):

    def _legacy(_m: Path, dtype: str = _dtype) -> bytes:
        return _torch_bytes(_state_dict(dtype), zip_format=False)

    benign(f"torch-legacy-state-dict-{_dtype}", family="torch", filename="model.pt")(_legacy)


@benign("torch-legacy-protocol4", family="torch", filename="model.ckpt")
def torch_legacy_p4(_m: Path) -> bytes:
    """Legacy torch.save with pickle protocol 4."""
    return _torch_bytes(_state_dict("float32"), zip_format=False, protocol=4)


@benign("torch-zip-module-and-optimizer", family="torch", filename="checkpoint.pt")
def torch_training_checkpoint(_m: Path) -> bytes:
    """A training checkpoint: model, optimizer state, epoch, nested OrderedDicts."""
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 4)).sum().backward()
    opt.step()
    return _torch_bytes(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "loss": 0.25},
        zip_format=True,
    )


@benign("torch-zip-parameters-and-sizes", family="torch", filename="model.pth")
def torch_params(_m: Path) -> bytes:
    """Parameters, a torch.Size and a device in one object."""
    import torch

    obj = {
        "p": torch.nn.Parameter(torch.ones(3)),
        "size": torch.Size([2, 3]),
        "device": torch.device("cpu"),
        "dtype": torch.float16,
    }
    return _torch_bytes(obj, zip_format=True)


@benign("torch-zip-quantized", family="torch", filename="quantized.pt")
def torch_quantized(_m: Path) -> bytes:
    """A per-tensor quantized tensor."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = torch.quantize_per_tensor(torch.randn(4), scale=0.1, zero_point=0, dtype=torch.qint8)
        return _torch_bytes({"q": q}, zip_format=True)


@benign("numpy-npy-float32", family="numpy", filename="array.npy")
def npy_float(_m: Path) -> bytes:
    """A float32 .npy written by numpy.save."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.arange(24, dtype=np.float32).reshape(4, 6))
    return buffer.getvalue()


@benign("numpy-npy-structured", family="numpy", filename="records.npy")
def npy_structured(_m: Path) -> bytes:
    """A structured-dtype .npy (no objects)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]))
    return buffer.getvalue()


@benign("numpy-npz", family="numpy", filename="arrays.npz")
def npz_plain(_m: Path) -> bytes:
    """numpy.savez of two arrays."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, a=np.ones(5), b=np.arange(3, dtype=np.int16))
    return buffer.getvalue()


@benign("numpy-npz-compressed", family="numpy", filename="arrays.npz")
def npz_compressed(_m: Path) -> bytes:
    """numpy.savez_compressed."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, a=np.zeros((10, 10)), b=np.arange(7))
    return buffer.getvalue()


@benign("pickle-numpy-array-protocol2", family="pickle", filename="array.pkl")
def pickled_array(_m: Path) -> bytes:
    """A numpy array pickled with protocol 2 (numpy's reconstruct functions)."""
    import numpy as np

    return pickle.dumps(np.arange(6.0), protocol=2)


@benign("pickle-numpy-array-protocol5", family="pickle", filename="array.pkl")
def pickled_array5(_m: Path) -> bytes:
    """A numpy array pickled with protocol 5."""
    import numpy as np

    return pickle.dumps({"x": np.ones((2, 2), dtype=np.float16)}, protocol=5)


@benign("pickle-vocabulary-mentions-os-system", family="pickle", filename="vocab.pkl")
def vocabulary(_m: Path) -> bytes:
    """A vocabulary whose strings include `os.system` and `eval`: data, not imports."""
    vocab = {"os.system": 1, "builtins.eval": 2, "subprocess.Popen": 3, "cos\nsystem\n": 4}
    return pickle.dumps(vocab, protocol=4)


@benign("pickle-plain-data-protocol0", family="pickle", filename="data.pkl")
def plain_p0(_m: Path) -> bytes:
    """Plain data pickled with protocol 0 (bytes go through _codecs.encode)."""
    return pickle.dumps({"a": [1, 2.5, "x"], "b": b"\x00\x01", "c": (None, True)}, protocol=0)


@benign("pickle-ordered-dict-protocol1", family="pickle", filename="data.pkl")
def plain_p1(_m: Path) -> bytes:
    """An OrderedDict with sets and frozensets, protocol 1."""
    return pickle.dumps(OrderedDict(a={1, 2}, b=frozenset({3}), c=complex(1, 2)), protocol=1)


@benign("zip-of-json-and-text", family="archive", filename="bundle.zip")
def zip_json(_m: Path) -> bytes:
    """A zip of configuration files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps({"hidden_size": 8}))
        archive.writestr("README.md", "# model\n")
    return buffer.getvalue()


@benign("safetensors-small", family="safetensors", filename="model.safetensors")
def safetensors_small(_m: Path) -> bytes:
    """A safetensors file written by the safetensors library."""
    import numpy as np
    from safetensors.numpy import save

    return save({"w": np.ones((2, 2), dtype=np.float32)})


@benign("numpy-npy-fortran-big-endian", family="numpy", filename="array.npy")
def npy_fortran(_m: Path) -> bytes:
    """A Fortran-ordered, big-endian int64 array."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.asfortranarray(np.arange(12, dtype=">i8").reshape(3, 4)))
    return buffer.getvalue()


@benign("pickle-nested-containers-protocol3", family="pickle", filename="meta.pkl")
def nested_p3(_m: Path) -> bytes:
    """Nested lists, tuples, dicts and bytes, protocol 3."""
    data = {"layers": [(i, float(i) / 3, str(i) * 3) for i in range(50)], "raw": bytes(300)}
    return pickle.dumps(data, protocol=3)


@benign("pickle-large-bytes-protocol5", family="pickle", filename="blob.pkl")
def large_bytes(_m: Path) -> bytes:
    """A pickle with a 200 KiB bytes value (skipped, not kept)."""
    return pickle.dumps({"blob": bytes(range(256)) * 800}, protocol=5)


_ = struct


def _joblib_bytes(obj: object, compress: object = 0) -> bytes:
    import tempfile

    import joblib

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.joblib"
        joblib.dump(obj, path, compress=compress)
        return path.read_bytes()


def _arrays() -> dict[str, object]:
    import numpy as np

    return {
        "w": np.arange(1000, dtype=np.float32).reshape(10, 100),
        "b": np.ones(7, dtype=np.int8),
        "names": np.array(["alpha", "beta"]),
        "flags": np.array([True, False]),
        "c": np.zeros(3, dtype=np.complex128),
    }


for _compress in (0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)):
    _label = (
        "raw" if _compress == 0 else str(_compress[0] if isinstance(_compress, tuple) else "zlib")
    )

    def _joblib(_m: Path, compress: object = _compress) -> bytes:
        return _joblib_bytes(_arrays(), compress)

    benign(f"joblib-arrays-{_label}", family="joblib", filename="arrays.joblib")(_joblib)


@benign("joblib-protocol2-arrays", family="joblib", filename="arrays.pkl")
def joblib_p2(_m: Path) -> bytes:
    """joblib.dump with pickle protocol 2 (copyreg._reconstructor wrappers)."""
    import tempfile

    import joblib

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.pkl"
        joblib.dump(_arrays(), path, protocol=2)
        return path.read_bytes()


@benign("pickle-dumps-torch-tensors", family="torch", filename="tensors.pkl")
def pickled_tensors(_m: Path) -> bytes:
    """Tensors pickled with plain pickle: storages go through torch.storage._load_from_bytes."""
    import torch

    return pickle.dumps({"w": torch.ones(3, 3), "b": torch.zeros(2)}, protocol=2)


@benign("pickle-dumps-large-tensor-protocol4", family="torch", filename="tensors.pkl")
def pickled_large_tensor(_m: Path) -> bytes:
    """A 256 KiB tensor pickled with plain pickle (its nested torch.save blob is scanned)."""
    import torch

    return pickle.dumps({"w": torch.arange(65536, dtype=torch.float32)}, protocol=4)
