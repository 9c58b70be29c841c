"""Containers: PyTorch zips, legacy checkpoints, npz and npy, opened by content in one pass."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests import samples
from tests.scanners.streams_for_tests import reader_for
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.interface import ScanContext
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify


def _scan(path: Path) -> tuple[FileFormat, list[Finding]]:
    with reader_for(path, chunk_size=4096) as reader:
        fmt = identify(reader.peek(65536), reader.size)
        scanner = scanner_for(fmt)
        assert scanner is not None, fmt
        return fmt, list(scanner.scan(reader, ScanContext(path.name, fmt)))


def _serious(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity.at_least(Severity.MEDIUM)]


@pytest.mark.parametrize("zip_format", [True, False])
def test_real_torch_checkpoints_are_clean(tmp_path: Path, zip_format: bool) -> None:
    path = tmp_path / "pytorch_model.bin"
    state = {
        "w": torch.randn(8, 8),
        "h": torch.zeros(3, dtype=torch.float16),
        "bf": torch.ones(2, dtype=torch.bfloat16),
        "i": torch.arange(5),
        "p": torch.nn.Parameter(torch.ones(2)),
    }
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    fmt, findings = _scan(path)
    assert fmt is (FileFormat.PYTORCH_ZIP if zip_format else FileFormat.PYTORCH_LEGACY)
    assert _serious(findings) == []
    assert any(f.code == "PICKLE-IMPORTS" for f in findings)


@pytest.mark.parametrize("folder", ["archive", "innocent_name", "a/b"])
def test_payload_in_torch_zip_is_found_whatever_the_folder(
    tmp_path: Path, marker_dir: Path, folder: str
) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(samples.torch_zip_with_pickle(samples.os_system(marker_dir), folder=folder))
    _, findings = _scan(path)
    hits = [f for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert [(f.evidence, f.member) for f in hits] == [("os.system", f"{folder}/data.pkl")]


def test_payload_in_deflated_member_is_found(tmp_path: Path, marker_dir: Path) -> None:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", samples.builtins_eval(marker_dir))
    _, findings = _scan(path)
    assert [f.evidence for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"] == [
        "builtins.eval"
    ]


def test_object_npz_member_is_analysed(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez(path, numbers=np.arange(3), objects=np.array([{"a": 1}, None], dtype=object))
    fmt, findings = _scan(path)
    assert fmt is FileFormat.NUMPY_NPZ
    codes = {f.code for f in findings}
    assert "NUMPY-OBJECT-ARRAY" in codes
    assert not [f for f in findings if f.code.startswith("PICKLE-") and f.severity.rank > 1]


def test_object_npy_with_payload_is_critical(tmp_path: Path, marker_dir: Path) -> None:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    path = tmp_path / "evil.npy"
    path.write_bytes(npy + samples.os_system(marker_dir))
    _, findings = _scan(path)
    assert {"NUMPY-OBJECT-ARRAY", "PICKLE-DANGEROUS-GLOBAL"} <= {f.code for f in findings}


def test_plain_npy_is_clean_and_truncated_npy_is_not(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    np.save(path, np.arange(100, dtype=np.float32))
    assert _serious(_scan(path)[1]) == []
    path.write_bytes(path.read_bytes()[:-10])
    assert [f.code for f in _scan(path)[1]] == ["NUMPY-TRUNCATED"]


def test_duplicate_member_names_are_reported(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02]q\x00.")
        with pytest.warns(UserWarning):
            archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    path = tmp_path / "dup.zip"
    path.write_bytes(buffer.getvalue())
    assert "ZIP-DUPLICATE-NAME" in {f.code for f in _scan(path)[1]}


def test_zip_without_directory_is_unscannable(tmp_path: Path, marker_dir: Path) -> None:
    data = samples.torch_zip_with_pickle(samples.os_system(marker_dir))
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: data.rfind(b"PK\x01\x02")])
    findings = _scan(path)[1]
    assert [f.code for f in findings] == ["ARCHIVE-UNSCANNABLE"]
    assert findings[0].severity is Severity.HIGH


def test_corrupted_pickle_member_crc_is_reported(tmp_path: Path) -> None:
    data = bytearray(samples.torch_zip_with_pickle(b"\x80\x02]q\x00."))
    at = data.find(b"\x80\x02]q\x00.")
    data[at + 2] = ord("}")  # still a valid pickle, but no longer the bytes the CRC covers
    path = tmp_path / "crc.pt"
    path.write_bytes(bytes(data))
    assert "ZIP-CRC-MISMATCH" in {f.code for f in _scan(path)[1]}
