"""7z archives read with py7zr: members scanned by content, names, budgets, encryption, damage."""

from __future__ import annotations

import io
import lzma
import pickle
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from benchmarks.corpus.containers import payload
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding
from verifier.scanners import sevenz
from verifier.scanners.budget import DecompressionBudget, ScanBudget
from verifier.scanners.interface import ScanContext
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify


def _scan(data: bytes, *, budget: DecompressionBudget | None = None) -> list[Finding]:
    fmt = identify(data[:65536], len(data))
    scanner = scanner_for(fmt)
    assert scanner is not None, fmt
    ctx = ScanContext("model.7z", fmt, budget=budget)
    return list(scanner.scan(BytesScanStream(data), ctx))


def _seven_zip(
    files: dict[str, bytes], *, rename: dict[str, str] | None = None, **options: object
) -> bytes:
    """A 7z archive of `files`; `rename` then rewrites names py7zr refuses to write.

    The header is left unencoded so a name can be swapped for one of the same length (UTF-16)
    and the header's CRCs recomputed: what a hostile tool writes.
    """
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w", **options) as archive:  # type: ignore[arg-type]
        if rename:
            archive.set_encoded_header_mode(False)
        for name, data in files.items():
            archive.writestr(data, name)
    raw = bytearray(buffer.getvalue())
    for old, new in (rename or {}).items():
        before, after = old.encode("utf-16-le"), new.encode("utf-16-le")
        assert len(before) == len(after) and raw.count(before) == 1
        at = raw.find(before)
        raw[at : at + len(before)] = after
    if rename:
        offset, size = struct.unpack_from("<QQ", raw, 12)
        struct.pack_into("<I", raw, 28, zlib.crc32(raw[32 + offset : 32 + offset + size]))
        struct.pack_into("<I", raw, 8, zlib.crc32(raw[12:32]))
    return bytes(raw)


def _codes(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.code, f.member) for f in findings]


def test_benign_members_are_read_and_allowed() -> None:
    data = _seven_zip({"config.json": b'{"a": 1}', "weights/a.bin": bytes(4096)})
    assert _scan(data) == []


def test_a_pickle_payload_inside_is_detected(marker_dir: Path) -> None:
    data = _seven_zip({"readme.txt": b"hello", "model/data.pkl": payload(marker_dir)})
    [hit] = [f for f in _scan(data) if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert (hit.member, hit.evidence) == ("model/data.pkl", "os.system")


def test_a_payload_in_a_7z_inside_a_zip_inside_a_7z_is_detected(marker_dir: Path) -> None:
    inner = _seven_zip({"p.pkl": payload(marker_dir)})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("inner.7z", inner)
    data = _seven_zip({"bundle.zip": buffer.getvalue()})
    [hit] = [f for f in _scan(data) if f.code == "PICKLE-DANGEROUS-GLOBAL"]
    assert hit.member == "bundle.zip!inner.7z!p.pkl"


def test_nesting_past_the_depth_limit_is_not_opened() -> None:
    data = _seven_zip({"a.bin": b"x"})
    for level in range(6):
        data = _seven_zip({f"l{level}.7z": data})
    findings = _scan(data)
    assert [f.code for f in findings] == ["ARCHIVE-BOMB"]
    assert "nested" in findings[0].message


def test_traversal_and_absolute_names_are_findings_and_their_content_is_scanned(
    marker_dir: Path,
) -> None:
    """Issue 12: the member's content is what extracting it writes, so it is scanned too."""
    data = _seven_zip(
        {"xx/evil.pkl": payload(marker_dir), "ok.txt": b"fine", "xabs": b"y"},
        rename={"xx/evil.pkl": "../evil.pkl", "xabs": "/abs"},
    )
    found = _scan(data)
    assert _codes(found) == [
        ("ARCHIVE-PATH-TRAVERSAL", "../evil.pkl"),
        ("ARCHIVE-PATH-TRAVERSAL", "/abs"),
        ("PICKLE-DANGEROUS-GLOBAL", "../evil.pkl"),
    ]
    assert found[-1].evidence == "os.system"


def test_an_escaping_name_that_collides_with_its_alias_is_still_scanned(
    marker_dir: Path,
) -> None:
    data = _seven_zip(
        {"xx/evil.pkl": payload(marker_dir), "verifier-escaping-member-0": b"plain"},
        rename={"xx/evil.pkl": "../evil.pkl"},
    )
    codes = _codes(_scan(data))
    assert ("PICKLE-DANGEROUS-GLOBAL", "../evil.pkl") in codes


def _with_lzma1_dictionary(size: int) -> bytes:
    """A 7z archive (unencoded header) whose LZMA coder declares a `size`-byte dictionary.

    Written by py7zr with a small dictionary, then the coder's properties rewritten and the
    header CRCs recomputed: what a hostile tool writes.
    """
    buffer = io.BytesIO()
    filters = [{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16}]
    with py7zr.SevenZipFile(buffer, "w", filters=filters) as archive:
        archive.set_encoded_header_mode(False)
        archive.writestr(b"hello" * 100, "a.txt")
    raw = bytearray(buffer.getvalue())
    coder = b"\x23\x03\x01\x01\x05"  # simple coder, 3-byte id LZMA, 5 property bytes
    at = raw.index(coder) + len(coder) + 1
    assert int.from_bytes(raw[at : at + 4], "little") == 1 << 16
    raw[at : at + 4] = size.to_bytes(4, "little")
    offset, length = struct.unpack_from("<QQ", raw, 12)
    struct.pack_into("<I", raw, 28, zlib.crc32(raw[32 + offset : 32 + offset + length]))
    struct.pack_into("<I", raw, 8, zlib.crc32(raw[12:32]))
    return bytes(raw)


def _with_encoded_header_dictionary(bits: int) -> bytes:
    """A 7z archive whose encoded header's LZMA2 coder declares dictionary code `bits`."""
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.writestr(b"hello", "a.txt")
    raw = bytearray(buffer.getvalue())
    offset, length = struct.unpack_from("<QQ", raw, 12)
    header = 32 + offset
    assert raw[header] == 0x17
    coder = b"\x21\x21\x01"  # simple coder, 1-byte id LZMA2, 1 property byte
    at = raw.index(coder, header) + len(coder)
    raw[at] = bits
    struct.pack_into("<I", raw, 28, zlib.crc32(raw[header : header + length]))
    struct.pack_into("<I", raw, 8, zlib.crc32(raw[12:32]))
    return bytes(raw)


def test_a_member_coder_declaring_a_huge_dictionary_is_refused_before_inflating() -> None:
    assert [f.code for f in _scan(_with_lzma1_dictionary(1 << 20))] == []  # the control
    findings = _scan(_with_lzma1_dictionary(0xFFFFFFFF))
    assert [f.code for f in findings] == ["ARCHIVE-BOMB"]
    assert "dictionary" in findings[0].message and "refused" in findings[0].message


def test_an_encoded_header_declaring_a_huge_dictionary_is_refused_before_py7zr_decodes_it() -> None:
    assert _scan(_with_encoded_header_dictionary(16)) == []  # 1 MiB: the control
    findings = _scan(_with_encoded_header_dictionary(40))  # 4 GiB - 1
    assert [f.code for f in findings] == ["ARCHIVE-BOMB"]
    assert "encoded header" in findings[0].message


def test_coder_memory_reads_each_coder_as_its_decoder_does() -> None:
    assert sevenz.coder_memory(b"\x03\x01\x01", b"\x5d\x00\x00\x01\x00") == 1 << 16
    assert sevenz.coder_memory(b"\x21", bytes([16])) == 1 << 20
    assert sevenz.coder_memory(b"\x21", bytes([17])) == 3 << 19
    assert sevenz.coder_memory(b"\x21", bytes([40])) == 0xFFFFFFFF
    assert sevenz.coder_memory(b"\x03\x04\x01", b"\x06\x00\x00\x00\x40") == 1 << 30
    assert sevenz.coder_memory(b"\x04\x01\x08", None) == 0  # deflate
    for bits in range(41):  # LZMA2's table, as liblzma reads it
        filters = [
            {"id": lzma.FILTER_LZMA2, "dict_size": sevenz.coder_memory(b"\x21", bytes([bits]))}
        ]
        props = lzma._encode_filter_properties(filters[0])  # type: ignore[attr-defined]
        assert props[0] == bits


def test_a_symlink_out_is_a_traversal_and_one_inside_is_not(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "a.bin").write_bytes(b"x")
    (tmp_path / "out").symlink_to("../../../../../../etc/passwd")
    (tmp_path / "in").symlink_to("weights/a.bin")
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.write(tmp_path / "out", "out")
        archive.write(tmp_path / "in", "in")
    findings = _scan(buffer.getvalue())
    assert [(f.code, f.member, f.evidence) for f in findings] == [
        ("ARCHIVE-PATH-TRAVERSAL", "out", "../../../../../../etc/passwd")
    ]


def test_declared_sizes_over_the_budget_are_a_bomb_before_inflating() -> None:
    data = _seven_zip({"big.bin": bytes(4 << 20)})
    budget = DecompressionBudget(1 << 20)
    findings = _scan(data, budget=budget)
    assert [f.code for f in findings] == ["ARCHIVE-BOMB"]
    assert budget.remaining() == 1 << 20  # nothing was inflated


def test_archives_of_one_scan_share_its_budget() -> None:
    data = _seven_zip({"big.bin": bytes(3 << 20)})
    scan = ScanBudget(floor=4 << 20, ratio=0)
    assert _scan(data, budget=DecompressionBudget(8 << 20, scan=scan)) == []
    second = _scan(data, budget=DecompressionBudget(8 << 20, scan=scan))
    assert [f.code for f in second] == ["ARCHIVE-BOMB"]


@pytest.mark.parametrize("header_encryption", [False, True])
def test_encrypted_archives_are_refused_unread(header_encryption: bool) -> None:
    data = _seven_zip(
        {"a.pkl": pickle.dumps({"a": 1})}, password="secret", header_encryption=header_encryption
    )
    findings = _scan(data)
    assert [(f.code, f.evidence) for f in findings] == [("ARCHIVE-UNSCANNABLE", "7z encrypted")]


def test_truncated_archive_is_a_finding_not_a_traceback() -> None:
    data = _seven_zip({"a.pkl": pickle.dumps(list(range(5000)))})
    for cut in (10, 31, len(data) // 2, len(data) - 1):
        assert [f.code for f in _scan(data[:cut])] == ["ARCHIVE-UNSCANNABLE"], cut


def test_corrupt_archives_are_findings_not_tracebacks() -> None:
    data = _seven_zip({"a.pkl": pickle.dumps(list(range(5000))), "b.txt": b"hello" * 50})
    for at in range(32, len(data), 7):
        damaged = bytearray(data)
        damaged[at] ^= 0x5A
        findings = _scan(bytes(damaged))  # must not raise
        assert all(f.severity.value for f in findings)


def test_without_py7zr_a_7z_archive_is_refused_unread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "py7zr", None)
    assert not sevenz.py7zr_available()
    findings = _scan(_seven_zip({"a.txt": b"x"}))
    assert [f.code for f in findings] == ["ARCHIVE-UNSCANNABLE"]
    assert "[7z]" in findings[0].message


def test_rar_stays_unscannable() -> None:
    findings = _scan(b"Rar!\x1a\x07\x01\x00" + bytes(100))
    assert [(f.code, f.evidence) for f in findings] == [("ARCHIVE-UNSCANNABLE", "rar")]


def test_a_link_behind_a_repeated_name_is_still_checked_as_a_link(tmp_path: Path) -> None:
    # py7zr hands the second "x" to the writer as "x_0": it must still be read as a link.
    (tmp_path / "out").symlink_to("../../../../../../etc/passwd")
    (tmp_path / "plain").write_bytes(b"plain")
    buffer = io.BytesIO()
    with py7zr.SevenZipFile(buffer, "w") as archive:
        archive.write(tmp_path / "plain", "x")
        archive.write(tmp_path / "out", "x")
    findings = _scan(buffer.getvalue())
    assert [(f.code, f.member) for f in findings] == [("ARCHIVE-PATH-TRAVERSAL", "x_0")]
