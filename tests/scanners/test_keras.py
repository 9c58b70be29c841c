"""Keras configs in .keras archives, JSON and legacy .h5 files (read by offsets, no h5py)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from benchmarks.corpus.keras_samples import h5_with_config
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.hdf5 import Hdf5Error, root_attributes
from verifier.scanners.interface import ScanContext
from verifier.scanners.keras import Hdf5Scanner, config_findings

CTX = ScanContext(path="model.h5", format=FileFormat.HDF5)
LAMBDA = {"class_name": "Lambda", "config": {"name": "l", "function": ["AAAA", None, None]}}


def _attrs(data: bytes) -> dict[str, bytes | None]:
    return {a.name: a.value for a in root_attributes(lambda o, n: data[o : o + n], len(data))}


def _h5(tmp_path: Path, **kwargs: object) -> tuple[Path, h5py.File]:
    path = tmp_path / "x.h5"
    return path, h5py.File(path, "w", **kwargs)


@pytest.mark.parametrize(
    "options", [{}, {"libver": "latest"}, {"userblock_size": 512}, {"libver": ("v108", "v108")}]
)
def test_root_string_attributes_match_h5py(tmp_path: Path, options: dict[str, object]) -> None:
    path, handle = _h5(tmp_path, **options)
    with handle:
        handle.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {}})
        handle.attrs["fixed"] = np.bytes_(b"fixed length")
        handle.attrs["number"] = 7
        handle.create_dataset("weights", data=np.zeros(4))
    attrs = _attrs(path.read_bytes())
    assert attrs["model_config"] == b'{"class_name": "Sequential", "config": {}}'
    assert attrs["fixed"] == b"fixed length"
    assert attrs["number"] is None


def test_continuation_blocks_are_followed(tmp_path: Path) -> None:
    path, handle = _h5(tmp_path)
    with handle:
        for i in range(40):
            handle.attrs[f"filler{i}"] = "x" * 200
        handle.attrs["model_config"] = "last"
    assert _attrs(path.read_bytes())["model_config"] == b"last"


def test_dense_attribute_storage_fails_closed(tmp_path: Path) -> None:
    path, handle = _h5(tmp_path, libver="latest")
    with handle:
        for i in range(20):
            handle.attrs[f"filler{i}"] = "x" * 100
        handle.attrs["model_config"] = json.dumps(LAMBDA)
    [finding] = Hdf5Scanner().scan(BytesScanStream(path.read_bytes()), CTX)
    assert finding.code == "HDF5-UNSUPPORTED"
    assert "densely" in finding.message


@pytest.mark.parametrize("cut", [8, 100, 400, 1000])
def test_truncated_file_fails_closed(tmp_path: Path, cut: int) -> None:
    data = h5_with_config({"class_name": "Sequential", "config": {"layers": [LAMBDA]}})
    findings = list(Hdf5Scanner().scan(BytesScanStream(data[:cut]), CTX))
    assert [f.code for f in findings] == ["HDF5-UNSUPPORTED"]


def test_no_superblock_is_an_error() -> None:
    with pytest.raises(Hdf5Error):
        root_attributes(lambda o, n: b"\x00" * n, 4096)


def test_lambda_in_h5_config_is_critical() -> None:
    data = h5_with_config({"class_name": "Sequential", "config": {"layers": [LAMBDA]}})
    [finding] = Hdf5Scanner().scan(BytesScanStream(data), CTX)
    assert finding.code == "KERAS-LAMBDA-LAYER" and finding.severity.value == "critical"
    assert "model_config" in finding.message and finding.evidence == "l"


def test_config_that_is_not_json_is_reported() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.h5"
        with h5py.File(path, "w") as handle:
            handle.attrs["model_config"] = "{not json"
        data = path.read_bytes()
    assert [f.code for f in Hdf5Scanner().scan(BytesScanStream(data), CTX)] == [
        "KERAS-CONFIG-INVALID"
    ]


def _codes(document: object) -> list[str]:
    found: list[Finding] = list(config_findings(document, CTX))
    return sorted(f.code for f in found)


def test_keras_team_modules_and_registered_names_pass() -> None:
    preset = {
        "module": "keras_hub.src.models.gemma.gemma_backbone",
        "class_name": "GemmaBackbone",
        "config": {"dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {}}},
        "registered_name": "keras_hub>GemmaBackbone",
    }
    assert _codes(preset) == []


@pytest.mark.parametrize(
    ("node", "code"),
    [
        ({"module": "os", "class_name": "system", "config": {}}, "KERAS-UNSAFE-MODULE"),
        ({"module": "kerasx.evil", "class_name": "A", "config": {}}, "KERAS-UNSAFE-MODULE"),
        (
            {"module": "keras.utils", "class_name": "get_file", "config": {}},
            "KERAS-DANGEROUS-FUNCTION",
        ),
        (
            {"module": "keras.src.saving", "class_name": "function", "config": "load_model"},
            "KERAS-DANGEROUS-FUNCTION",
        ),
        ({"class_name": "Custom>Backdoor", "config": {}}, "KERAS-CUSTOM-OBJECT"),
        (
            {"class_name": "X", "config": {}, "registered_name": "my_pkg>X"},
            "KERAS-CUSTOM-OBJECT",
        ),
        (LAMBDA, "KERAS-LAMBDA-LAYER"),
    ],
)
def test_each_kind_of_code_is_found_deep_in_the_tree(node: dict[str, object], code: str) -> None:
    document = {
        "class_name": "Functional",
        "config": {"layers": [{"class_name": "Dense", "config": {"kernel_initializer": node}}]},
    }
    assert _codes(document) == [code]


def test_one_finding_per_lambda_layer() -> None:
    keras3 = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": "x"}}},
    }
    assert _codes({"class_name": "Sequential", "config": {"layers": [keras3, keras3]}}) == [
        "KERAS-LAMBDA-LAYER",
        "KERAS-LAMBDA-LAYER",
    ]


class _InflatedStream(BytesScanStream):
    """A compressed archive member: no reading by offset, only forward."""

    def read_at(self, offset: int, n: int) -> bytes:
        return b""


def test_compressed_h5_member_is_read_from_a_temporary_file() -> None:
    data = h5_with_config({"class_name": "Sequential", "config": {"layers": [LAMBDA]}})
    [finding] = Hdf5Scanner().scan(_InflatedStream(data), CTX)
    assert finding.code == "KERAS-LAMBDA-LAYER" and finding.evidence == "l"


def test_deflated_h5_in_a_keras_archive_is_checked(tmp_path: Path) -> None:
    import zipfile

    from click.testing import CliRunner

    from verifier.cli import cli

    data = h5_with_config({"class_name": "Sequential", "config": {"layers": [LAMBDA]}})
    with zipfile.ZipFile(tmp_path / "model.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.weights.h5", data)
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--format", "json"])
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert result.exit_code == 1 and "KERAS-LAMBDA-LAYER" in codes
