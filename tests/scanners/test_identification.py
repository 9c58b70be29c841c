"""Positive identification: a file is allowed only as a format analysed, or as plain data.

Executables are named as such and blocked; content identified as nothing is FORMAT-UNKNOWN
(high); a zip behind prepended bytes is opened as zip readers open it; data formats with a
zip at their end are polyglots; vocabularies are text.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from tests.samples import os_system
from tests.scanners.streams import BytesScanStream
from verifier.model import Decision, FileFormat, Finding, Severity
from verifier.pipeline import scan_stream, scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.scanners.sniff import HEAD_SIZE, identify


def _scan(data: bytes, path: str = "model.bin") -> tuple[FileFormat, list[Finding]]:
    fmt, findings, _ = scan_stream(BytesScanStream(data), path, data[:HEAD_SIZE])
    return fmt, findings


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def pe_bytes() -> bytes:
    """A minimal PE header: DOS stub pointing at `PE\\0\\0`, then a COFF header (x86-64)."""
    dos = bytearray(b"MZ" + b"\x90\x00" + b"\x00" * 56)
    dos += struct.pack("<I", 0x80)
    dos += b"\x00" * (0x80 - len(dos))
    return bytes(dos) + b"PE\x00\x00" + struct.pack("<HH", 0x8664, 1) + b"\x00" * 200


EXECUTABLES = {
    "pe": pe_bytes(),
    "elf": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HH", 3, 0x3E) + b"\x00" * 100,
    "mach-o-64": b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 100,
    "mach-o-universal": b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + b"\x00" * 100,
}


@pytest.mark.parametrize("data", EXECUTABLES.values(), ids=EXECUTABLES.keys())
def test_executables_are_identified_and_blocked(data: bytes) -> None:
    fmt, findings = _scan(data, "pytorch_model.bin")
    assert fmt is FileFormat.EXECUTABLE
    (finding,) = [f for f in findings if f.code == "FORMAT-EXECUTABLE"]
    assert finding.severity is Severity.HIGH


def test_text_starting_mz_is_text() -> None:
    data = b"MZ-style notes: this model was trained on lots of text without any NUL.\n" * 3
    assert identify(data, len(data)) is FileFormat.TEXT


def test_unidentified_content_is_high() -> None:
    fmt, findings = _scan(bytes(range(1, 200)) * 3)
    assert fmt is FileFormat.UNKNOWN
    (finding,) = findings
    assert (finding.code, finding.severity) == ("FORMAT-UNKNOWN", Severity.HIGH)


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_behind_prepended_bytes_is_opened_and_scanned(tmp_path: Path) -> None:
    data = b"\x00\x01junk" * 20 + _zip({"model/data.pkl": os_system(tmp_path)})
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["model/data.pkl"]  # the oracle
    fmt, findings = _scan(data, "model.keras")
    assert fmt is FileFormat.UNKNOWN
    assert {"ZIP-PREPENDED-DATA", "PICKLE-DANGEROUS-GLOBAL"} <= _codes(findings)
    assert "FORMAT-UNKNOWN" not in _codes(findings)


def test_benign_zip_behind_prepended_bytes_is_not_blocked() -> None:
    data = b"\x00\x01junk" * 20 + _zip({"config.json": b'{"a": 1}'})
    _, findings = _scan(data, "model.keras")
    assert _codes(findings) == {"ZIP-PREPENDED-DATA"}
    assert all(f.severity.rank < Severity.HIGH.rank for f in findings)


def test_broken_end_record_stays_unknown() -> None:
    data = bytes(range(1, 200)) + b"PK\x05\x06" + b"\x00" * 8 + b"\xff" * 10
    _, findings = _scan(data)
    assert _codes(findings) == {"FORMAT-UNKNOWN"}


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"# Model card\n" + b"Plain words.\n" * 6000, FileFormat.TEXT),
        (b'{"architectures": ["Bert"]}' + b" " * 70_000, FileFormat.JSON),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40, FileFormat.IMAGE),
    ],
    ids=["text-past-window", "json", "png"],
)
def test_data_formats_with_a_zip_at_their_end_are_polyglots(
    head: bytes, fmt: FileFormat, tmp_path: Path
) -> None:
    data = head + _zip({"data.pkl": os_system(tmp_path)})
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["data.pkl"]
    found, findings = _scan(data, "notes.txt")
    assert found is fmt
    assert {"FORMAT-POLYGLOT", "PICKLE-DANGEROUS-GLOBAL"} <= _codes(findings)


BERT_VOCAB = b"[PAD]\n" + b"".join(b"[unused%d]\n" % i for i in range(99)) + b"[UNK]\n[CLS]\n"


@pytest.mark.parametrize(
    "data",
    [BERT_VOCAB, b"[CLS]\n", b"[\n", b"{{ bos_token }}\n", b"[ x ]\n"],
    ids=["bert-vocab", "cls", "bracket-line", "template", "bracket-word"],
)
def test_vocabularies_and_bracketed_text_are_text(data: bytes) -> None:
    fmt, findings = _scan(data, "vocab.txt")
    assert (fmt, findings) == (FileFormat.TEXT, [])


@pytest.mark.parametrize(
    "data", [b"[]", b'["a"]', b"[1, 2]", b"[-1]", b"[true]", b"[null]", b"[[1]]", b"{}"]
)
def test_json_still_json(data: bytes) -> None:
    assert identify(data, len(data)) is FileFormat.JSON


def test_executable_in_a_model_folder_denies(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "pytorch_model.bin").write_bytes(EXECUTABLES["pe"])
    policy = load_policy(default_policy_path())
    report = scan_target(str(tmp_path), policy=policy, recorder=None, workers=1)
    assert report.verdict.decision is Decision.DENY
    assert "FORMAT-EXECUTABLE" in {f.code for f in report.findings}


def _scan_folder(tmp_path: Path, files: dict[str, bytes]) -> dict[str, tuple[FileFormat, set[str]]]:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    policy = load_policy(default_policy_path())
    report = scan_target(str(tmp_path), policy=policy, recorder=None, workers=1)
    return {r.path: (r.format, {f.code for f in r.findings}) for r in report.files}


def test_onnx_external_data_is_identified_by_its_reference(tmp_path: Path) -> None:
    from benchmarks.corpus.onnx_samples import onnx_model

    seen = _scan_folder(
        tmp_path,
        {
            "onnx/model.onnx": onnx_model(location="weights/w.bin"),
            "onnx/weights/w.bin": b"\x00\x80\xff\x10" * 8,
            "stray.bin": b"\x00\x80\xff\x10" * 8,
        },
    )
    assert seen["onnx/weights/w.bin"] == (FileFormat.TENSOR_DATA, {"FORMAT-REFERENCED-DATA"})
    assert seen["stray.bin"] == (FileFormat.UNKNOWN, {"FORMAT-UNKNOWN"})


def test_savedmodel_variables_are_identified_by_the_saved_model(tmp_path: Path) -> None:
    from benchmarks.corpus.savedmodel_samples import _BENIGN_OPS, saved_model

    seen = _scan_folder(
        tmp_path,
        {
            "sm/saved_model.pb": saved_model(_BENIGN_OPS, ("MatMul",)),
            "sm/variables/variables.index": b"\x00\xff" * 20,
            "sm/variables/variables.data-00000-of-00001": b"\x00\xff" * 20,
            "other/variables/variables.index": b"\x00\xff" * 20,
        },
    )
    for name in ("sm/variables/variables.index", "sm/variables/variables.data-00000-of-00001"):
        assert seen[name] == (FileFormat.TENSOR_DATA, {"FORMAT-REFERENCED-DATA"})
    assert seen["other/variables/variables.index"][0] is FileFormat.UNKNOWN


def test_a_referenced_file_keeps_what_its_content_is(tmp_path: Path) -> None:
    from benchmarks.corpus.onnx_samples import onnx_model

    seen = _scan_folder(
        tmp_path,
        {"model.onnx": onnx_model(location="w.bin"), "w.bin": os_system(tmp_path)},
    )
    fmt, codes = seen["w.bin"]
    assert fmt is FileFormat.PICKLE
    assert "PICKLE-DANGEROUS-GLOBAL" in codes
