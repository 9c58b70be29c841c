"""Containers by content: the member seam, tar links, 7z/rar, compressed streams, bombs."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.corpus.containers import payload, torch_zip
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners import members
from verifier.scanners.interface import ScanContext, ScanStream
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify


def _scan(data: bytes, name: str = "f") -> list[Finding]:
    fmt = identify(data[:65536], len(data))
    scanner = scanner_for(fmt)
    assert scanner is not None, fmt
    return list(scanner.scan(BytesScanStream(data), ScanContext(name, fmt)))


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_registered_member_scanner_is_used_for_its_format(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, bytes]] = []

    def scan_json(
        stream: ScanStream, ctx: ScanContext, member: str, depth: int
    ) -> Iterator[Finding]:
        seen.append((member, depth, stream.read(2)))
        yield ctx.finding("JSON-INVALID", Severity.MEDIUM, "seen", member=member)

    monkeypatch.setitem(members.MEMBER_SCANNERS, FileFormat.JSON, scan_json)
    findings = _scan(_zip({"cfg/config.json": b'{"a": 1}'}), "bundle.zip")
    assert seen == [("cfg/config.json", 0, b'{"')]
    assert [(f.code, f.member) for f in findings] == [("JSON-INVALID", "cfg/config.json")]


def test_member_findings_of_file_scanners_name_the_member(marker_dir: Path) -> None:
    data = _zip({"inner.pt": torch_zip(payload(marker_dir), folder="m")})
    [hit] = [f for f in _scan(data, "outer.zip") if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert hit.member == "inner.pt!m/data.pkl"


def test_tar_link_out_is_a_traversal_and_link_inside_is_not() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, target in (("out", "../../etc/passwd"), ("in", "weights/a.bin")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    findings = _scan(buffer.getvalue(), "model.tar")
    assert [(f.code, f.member, f.evidence) for f in findings] == [
        ("ARCHIVE-PATH-TRAVERSAL", "out", "../../etc/passwd")
    ]


def test_rar_archives_are_reported_unread() -> None:
    findings = _scan(b"Rar!\x1a\x07\x01\x00" + bytes(100), "model.bin")
    assert [(f.code, f.evidence) for f in findings] == [("ARCHIVE-UNSCANNABLE", "rar")]


def test_a_7z_head_with_no_archive_behind_it_is_unscannable() -> None:
    # Real 7z archives are read (tests/scanners/test_sevenz.py); a bare head is refused.
    findings = _scan(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100), "model.bin")
    assert [f.code for f in findings] == ["ARCHIVE-UNSCANNABLE"]


def test_gzip_of_a_pickle_is_scanned_inside(marker_dir: Path) -> None:
    findings = _scan(gzip.compress(payload(marker_dir)), "model.bin")
    [hit] = [f for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert (hit.member, hit.evidence) == ("(gzip)", "os.system")


def test_corrupt_compressed_stream_is_a_finding() -> None:
    data = gzip.compress(b"\x80\x02}q\x00." * 1000)
    findings = _scan(data[:40] + b"\x00" * 40, "x.gz")
    assert {f.code for f in findings} & {"ARCHIVE-UNSCANNABLE", "PICKLE-MALFORMED"}


def test_deflated_member_lying_about_its_size_is_a_bomb() -> None:
    data = bytearray(_zip({"z.bin": bytes(1 << 20)}, zipfile.ZIP_DEFLATED))
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.find(sig)
        data[pos + at : pos + at + 4] = (100).to_bytes(4, "little")
    codes = {f.code for f in _scan(bytes(data), "b.zip")}
    assert "ARCHIVE-BOMB" in codes


def test_tensor_storage_members_are_not_parsed_as_formats() -> None:
    # A storage record whose bytes look like a broken pickle is raw tensor data to torch.
    data = torch_zip(b"\x80\x02}q\x00.", extra={"data/1": b"\x80\x02(X\x01\x00\x00\x00a\xff"})
    findings = _scan(data, "model.pt")
    assert {f.code for f in findings} == {"PICKLE-IMPORTS"}
