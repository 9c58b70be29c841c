"""Scanners for JSON, passive formats (text, images, tokenizers, empty) and unknown files."""

from __future__ import annotations

import json

import pytest

from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners import basic
from verifier.scanners.basic import JsonScanner, PassiveScanner, UnknownFormatScanner
from verifier.scanners.interface import ScanContext, Scanner


def run(
    scanner: Scanner, data: bytes, fmt: FileFormat, *, size: int | None = None
) -> tuple[list[Finding], BytesScanStream]:
    stream = BytesScanStream(data, size=size)
    findings = list(scanner.scan(stream, ScanContext(path="f", format=fmt)))
    return findings, stream


def scan_json(data: bytes, *, size: int | None = None) -> tuple[list[Finding], BytesScanStream]:
    return run(JsonScanner(), data, FileFormat.JSON, size=size)


@pytest.mark.parametrize(
    ("fmt", "cls"),
    [
        (FileFormat.JSON, JsonScanner),
        (FileFormat.TEXT, PassiveScanner),
        (FileFormat.IMAGE, PassiveScanner),
        (FileFormat.SENTENCEPIECE, PassiveScanner),
        (FileFormat.EMPTY, PassiveScanner),
        (FileFormat.UNKNOWN, UnknownFormatScanner),
    ],
)
def test_scanners_register_for_their_formats(fmt: FileFormat, cls: type[Scanner]) -> None:
    assert Scanner.registry[fmt] is cls


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({"architectures": ["Llama"], "vocab_size": 32000}).encode(),
        b"[1, 2.5, null, true]",
        b'\xef\xbb\xbf{"bom": 1}',
        json.dumps({"k": "v" * 3_000_000}).encode(),  # spans several read chunks
    ],
    ids=["config", "array", "bom", "multi-chunk"],
)
def test_valid_json_yields_nothing_and_is_read_to_the_end(data: bytes) -> None:
    findings, stream = scan_json(data)
    assert findings == []
    assert stream.tell() == len(data)


def test_invalid_json_is_a_medium_finding_with_its_offset() -> None:
    findings, _ = scan_json(b'{"a": 1,\n "b": }')
    assert [(f.code, f.severity) for f in findings] == [("JSON-INVALID", Severity.MEDIUM)]
    assert findings[0].offset == 15
    assert "line 2" in findings[0].message


def test_json_offset_counts_bytes_not_characters() -> None:
    findings, _ = scan_json('{"\u00e9\u00e9": x}'.encode())
    assert findings[0].offset == 9  # the character index would be 7


def test_truncated_json_is_invalid() -> None:
    findings, _ = scan_json(b'{"a": [1, 2')
    assert [f.code for f in findings] == ["JSON-INVALID"]


def test_json_that_is_not_utf8_is_invalid() -> None:
    findings, _ = scan_json(b'{"a": "caf\xe9"}')
    assert [f.code for f in findings] == ["JSON-INVALID"]
    assert findings[0].offset == 10
    assert "UTF-8" in findings[0].message


def test_deeply_nested_json_is_a_finding_not_a_crash() -> None:
    findings, _ = scan_json(b"[" * 200_000 + b"]" * 200_000)
    assert [(f.code, f.severity) for f in findings] == [("JSON-LIMIT", Severity.HIGH)]
    assert "nested deeper than 128" in findings[0].message


def test_json_over_the_cap_is_not_read() -> None:
    findings, stream = scan_json(b"{}", size=basic.JSON_CAP + 1)
    assert [(f.code, f.severity) for f in findings] == [("FILE-TOO-LARGE-TO-PARSE", Severity.HIGH)]
    assert stream.bytes_read == 0


def test_json_growing_past_the_cap_while_read_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(basic, "JSON_CAP", 16)
    data = json.dumps({"k": "v" * 64}).encode()
    findings, stream = scan_json(data, size=10)
    assert [f.code for f in findings] == ["FILE-TOO-LARGE-TO-PARSE"]
    assert stream.bytes_read == 17


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        (FileFormat.TEXT, b"# README\n"),
        (FileFormat.IMAGE, b"\x89PNG\r\n\x1a\n" + b"\x00" * 32),
        (FileFormat.SENTENCEPIECE, b"\n\t\n\x05<unk>\x15\x00\x00\x00\x00\x18\x02"),
        (FileFormat.EMPTY, b""),
    ],
)
def test_passive_formats_yield_nothing_and_read_nothing(fmt: FileFormat, data: bytes) -> None:
    findings, stream = run(PassiveScanner(), data, fmt)
    assert findings == []
    assert stream.tell() == 0


def test_unknown_format_is_one_high_finding_with_evidence() -> None:
    findings, _ = run(
        UnknownFormatScanner(), b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64, FileFormat.UNKNOWN
    )
    assert len(findings) == 1
    finding = findings[0]
    assert (finding.code, finding.severity, finding.file) == ("FORMAT-UNKNOWN", Severity.HIGH, "f")
    assert finding.message.startswith("content identified as no known format")
    assert finding.evidence == "first bytes: 7f454c46020101000000000000000000"


def test_unknown_format_with_no_bytes_has_no_evidence() -> None:
    findings, _ = run(UnknownFormatScanner(), b"", FileFormat.UNKNOWN, size=3)
    assert [(f.code, f.evidence) for f in findings] == [("FORMAT-UNKNOWN", None)]
