"""Zips in compressed members read forward, and the decompression budget (issue 13)."""

from __future__ import annotations

import gzip
import io
import struct
import tracemalloc
import zipfile
from pathlib import Path

from benchmarks.hostile import EVIL_PICKLE, ZipMember, materialise, zip_segments
from tests.scanners.streams_for_tests import reader_for
from verifier.model import Finding
from verifier.pipeline import scan_file
from verifier.scanners.budget import DecompressionBudget, ScanBudget
from verifier.scanners.interface import ScanContext
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify
from verifier.sources.local import LocalFile


def _scan(path: Path, *, budget: DecompressionBudget | None = None) -> list[Finding]:
    with reader_for(path) as reader:
        fmt = identify(reader.peek(65536), reader.size)
        scanner = scanner_for(fmt)
        assert scanner is not None
        ctx = ScanContext(path=path.name, format=fmt, budget=budget)
        return list(scanner.scan(reader, ctx))


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


def _wrap(inner: bytes, *, levels: int = 1) -> bytes:
    """`inner` (a zip) deflated inside a zip, `levels` times."""
    data = inner
    for _ in range(levels):
        data = materialise(zip_segments([ZipMember("inner.zip", 8, [data])]))
    return data


def test_payload_three_deflated_levels_down_is_found(tmp_path: Path) -> None:
    innermost = materialise(
        zip_segments([ZipMember("pad.bin", 0, [1 << 20]), ZipMember("x.pkl", 0, [EVIL_PICKLE])])
    )
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(innermost, levels=3))
    findings = _scan(path)
    [hit] = [f for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert hit.member == "inner.zip!inner.zip!inner.zip!x.pkl"
    assert not _codes(findings) - {"PICKLE-DANGEROUS-GLOBAL"}


def test_a_nested_compressed_zip_is_streamed_not_held(tmp_path: Path) -> None:
    size = 64 << 20
    innermost = materialise(zip_segments([ZipMember("w.bin", 0, [size])]))
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(innermost, levels=2))
    tracemalloc.start()
    try:
        findings = _scan(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert findings == []
    assert peak < size // 4  # one decompression step per level, not the 64 MiB member


def test_a_directory_that_lists_other_bytes_is_inconsistent(tmp_path: Path) -> None:
    inner = bytearray(
        materialise(
            zip_segments([ZipMember("a.bin", 0, [b"aaaa"]), ZipMember("b.bin", 0, [b"bbbb"])])
        )
    )
    second = inner.rindex(b"PK\x01\x02")
    struct.pack_into("<I", inner, second + 42, 0)  # b.bin's directory entry points at a.bin
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(bytes(inner)))
    [finding] = [f for f in _scan(path) if f.code == "ZIP-INCONSISTENT"]
    assert finding.member == "inner.zip!b.bin"


def test_a_stored_member_with_a_wrong_crc_is_reported(tmp_path: Path) -> None:
    inner = bytearray(materialise(zip_segments([ZipMember("x.pkl", 0, [b"\x80\x02N."])])))
    for at in (14, inner.index(b"PK\x01\x02") + 16):  # the CRC in both headers
        struct.pack_into("<I", inner, at, 1234)
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(bytes(inner)))
    assert "ZIP-CRC-MISMATCH" in _codes(_scan(path))


def test_data_descriptors_cannot_be_streamed_and_block(tmp_path: Path) -> None:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            chunk = bytes(b)  # type: ignore[call-overload]
            self.data += chunk
            return len(chunk)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:  # as zipfile streams
        archive.writestr("x.pkl", EVIL_PICKLE)
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(bytes(sink.data)))
    [finding] = [f for f in _scan(path) if f.code == "ARCHIVE-UNSCANNABLE"]
    assert "data descriptor" in finding.message


def test_an_archive_over_its_budget_is_refused_before_inflating(tmp_path: Path) -> None:
    members = [ZipMember(f"part{i}.bin", 8, [1 << 20]) for i in range(8)]
    path = tmp_path / "bundle.zip"
    path.write_bytes(materialise(zip_segments(members)))
    budget = DecompressionBudget(4 << 20)
    findings = _scan(path, budget=budget)
    [bomb] = [f for f in findings if f.code == "ARCHIVE-BOMB"]
    assert "declare 8388608 bytes inflated" in bomb.message
    assert budget.remaining() == 4 << 20  # nothing was inflated
    assert len(_scan(path, budget=DecompressionBudget(8 << 20))) == 0


def test_nested_members_draw_on_one_budget(tmp_path: Path) -> None:
    inner = materialise(zip_segments([ZipMember("w.bin", 8, [3 << 20])]))
    path = tmp_path / "bundle.zip"
    path.write_bytes(_wrap(inner, levels=2))
    findings = _scan(path, budget=DecompressionBudget(3 << 20))
    bombs = [f for f in findings if f.code == "ARCHIVE-BOMB"]
    assert bombs and "decompression budget" in bombs[0].message


def test_a_gzip_stream_is_stopped_when_the_budget_is_spent(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl.gz"
    path.write_bytes(gzip.compress(b"\x80\x02" + b"N0" * (4 << 20) + b"N."))
    [bomb] = [f for f in _scan(path, budget=DecompressionBudget(1 << 20)) if f.code]
    assert bomb.code == "ARCHIVE-BOMB" and "file's decompression budget" in bomb.message


def test_the_files_of_a_scan_share_its_budget(tmp_path: Path) -> None:
    archive = materialise(zip_segments([ZipMember("w.bin", 8, [3 << 20])]))
    for name in ("a.zip", "b.zip"):
        (tmp_path / name).write_bytes(archive)
    scan = ScanBudget(floor=5 << 20, ratio=0)
    first, second = (
        scan_file(LocalFile(name, str(tmp_path / name)), scan_budget=scan)
        for name in ("a.zip", "b.zip")
    )
    assert first.findings == ()
    [bomb] = second.findings
    assert bomb.code == "ARCHIVE-BOMB" and "2097152 left" in bomb.message
