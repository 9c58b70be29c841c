"""GGUF: metadata and tensor table bounds, chat templates, against the reference writer."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus import chat_templates
from benchmarks.corpus.gguf_files import gguf_kv_string, gguf_string, hand_made, write_gguf
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.pipeline import scan_file
from verifier.scanners.gguf import GGML_TYPES, GgufScanner
from verifier.scanners.interface import ScanContext
from verifier.scanners.sniff import identify
from verifier.sources.local import walk

CTX = ScanContext(path="model.gguf", format=FileFormat.GGUF)


def scan_bytes(data: bytes) -> list[Finding]:
    return list(GgufScanner().scan(BytesScanStream(data), CTX))


def scan_path(path: Path) -> list[Finding]:
    [entry] = walk(str(path)).files
    result = scan_file(entry)
    assert result.format is FileFormat.GGUF
    return list(result.findings)


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


def test_ggml_type_table_matches_the_reference_package() -> None:
    from gguf.constants import GGML_QUANT_SIZES

    reference = {int(k): v for k, v in GGML_QUANT_SIZES.items()}
    ours = {k: (block, size) for k, (_, block, size) in GGML_TYPES.items()}
    # gguf-py lists Q8_1 as 40 bytes; ggml's block_q8_1 (two halves + 32 int8) is 36.
    reference.pop(9)
    ours.pop(9)
    assert ours == reference


def test_reference_file_without_template_is_clean(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    assert identify(path.read_bytes()[:65536], path.stat().st_size) is FileFormat.GGUF
    assert scan_path(path) == []


@pytest.mark.parametrize("family", sorted(chat_templates.BENIGN))
def test_popular_family_templates_pass(tmp_path: Path, family: str) -> None:
    path = write_gguf(tmp_path / "m.gguf", chat_template=chat_templates.BENIGN[family])
    assert scan_path(path) == []


@pytest.mark.parametrize("technique", sorted(chat_templates.malicious(Path("/m"))))
def test_template_escapes_are_critical(tmp_path: Path, technique: str, marker_dir: Path) -> None:
    template = chat_templates.malicious(marker_dir)[technique]
    path = write_gguf(tmp_path / "m.gguf", chat_template=template)
    findings = scan_path(path)
    assert findings and set(codes(findings)) == {"GGUF-TEMPLATE-INJECTION"}
    assert all(f.severity.value == "critical" and f.offset for f in findings)
    assert all("tokenizer.chat_template" in f.message for f in findings)


def test_named_template_is_analysed_too(tmp_path: Path, marker_dir: Path) -> None:
    evil = chat_templates.malicious(marker_dir)["lipsum-globals"]
    path = write_gguf(
        tmp_path / "m.gguf", chat_template=chat_templates.LLAMA3, named_templates={"tool_use": evil}
    )
    [finding] = scan_path(path)
    assert finding.code == "GGUF-TEMPLATE-INJECTION"
    assert "tokenizer.chat_template.tool_use" in finding.message
    assert finding.evidence == "__globals__"


def test_special_token_used_as_key_is_flagged(tmp_path: Path) -> None:
    # The model supplies bos_token: naming it '__class__' hides the attribute from the template.
    path = write_gguf(
        tmp_path / "m.gguf", chat_template="{{ ()[bos_token] }}", bos_token="__class__"
    )
    assert codes(scan_path(path)) == ["GGUF-TEMPLATE-INJECTION"]


def test_unparseable_template_is_reported() -> None:
    data = hand_made([gguf_kv_string("tokenizer.chat_template", "{% for x in %}")])
    [finding] = scan_bytes(data)
    assert finding.code == "GGUF-TEMPLATE-INVALID"
    assert finding.severity.value == "high"


def test_template_that_is_not_utf8_is_reported() -> None:
    data = hand_made([gguf_kv_string("tokenizer.chat_template", b"{{ x }}\xff")])
    assert codes(scan_bytes(data)) == ["GGUF-TEMPLATE-INVALID"]


def test_duplicate_key_and_both_values_are_checked() -> None:
    benign = gguf_kv_string("tokenizer.chat_template", chat_templates.PHI3)
    evil = gguf_kv_string("tokenizer.chat_template", "{{ cycler.__init__ }}")
    found = codes(scan_bytes(hand_made([benign, evil])))
    assert found == ["GGUF-DUPLICATE-KEY", "GGUF-TEMPLATE-INJECTION"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"GGUF" + struct.pack("<I", 1) + b"\x00" * 16, "version 1"),
        (b"GGUF" + struct.pack(">I", 3) + b"\x00" * 16, "version 50331648"),
        (b"GGUF\x03\x00\x00\x00", "tensor count runs past the end"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1 << 40), "metadata count"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0), "tensor count"),
        (hand_made([gguf_string("k") + struct.pack("<I", 99) + b"\x00" * 8]), "unknown type 99"),
        (hand_made([gguf_string("k") + struct.pack("<IQ", 8, 1 << 50)]), "past the end"),
        (hand_made([gguf_string(b"\xff\xfe") + struct.pack("<IB", 0, 1)]), "UTF-8"),
        (
            hand_made([gguf_string("k") + struct.pack("<IIQ", 9, 8, 1 << 40)]),
            "runs past the end",
        ),
        (
            hand_made([gguf_string("general.alignment") + struct.pack("<II", 4, 3)]),
            "power of two",
        ),
        (hand_made([], [("t", [32, 2], 77, 0)]), "unknown ggml type 77"),
        (hand_made([], [("t", [1, 1, 1, 1, 1], 0, 0)], data=b"\x00" * 64), "5 dimensions"),
        (hand_made([], [("t", [8], 0, 0)], data=b"\x00" * 16), "runs past the end"),
        (hand_made([], [("t", [4], 0, 8)], data=b"\x00" * 64), "not aligned"),
        (hand_made([], [("t", [31], 2, 0)], data=b"\x00" * 64), "block size"),
        (
            hand_made([], [("a", [16], 0, 0), ("b", [16], 0, 32)], data=b"\x00" * 128),
            "overlap",
        ),
        (hand_made([], [("t", [1 << 40, 1 << 40], 0, 0)], data=b"\x00" * 64), "overflow"),
    ],
)
def test_malformed_files_are_reported_with_offset(data: bytes, fragment: str) -> None:
    findings = scan_bytes(data)
    assert codes(findings)[-1] == "GGUF-MALFORMED"
    assert fragment in findings[-1].message
    assert findings[-1].offset is not None


def test_tensors_that_fit_exactly_are_accepted() -> None:
    data = hand_made(
        [gguf_kv_string("general.architecture", "llama")],
        [("a", [16], 0, 0), ("b", [32], 8, 64)],
        data=b"\x00" * (64 + 34),
    )
    assert scan_bytes(data) == []


def test_duplicate_tensor_names_are_reported() -> None:
    data = hand_made([], [("a", [8], 0, 0), ("a", [8], 0, 32)], data=b"\x00" * 64)
    assert codes(scan_bytes(data)) == ["GGUF-DUPLICATE-KEY"]


def test_vocabulary_is_skipped_not_kept(tmp_path: Path) -> None:
    tokens = [f"token-{i}" for i in range(20_000)]
    kv = gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, len(tokens))
    kv += b"".join(gguf_string(t) for t in tokens)
    stream = BytesScanStream(hand_made([kv]))
    assert list(GgufScanner().scan(stream, CTX)) == []
    assert stream.bytes_skipped > stream.bytes_read


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_files_never_crash(data: st.DataObject) -> None:
    base = hand_made(
        [
            gguf_kv_string("general.architecture", "llama"),
            gguf_kv_string("tokenizer.chat_template", chat_templates.GEMMA),
            gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + b"\x00" * 8,
            gguf_string("general.alignment") + struct.pack("<II", 4, 32),
        ],
        [("a", [16], 0, 0), ("b", [32], 8, 64)],
        data=b"\x01" * 98,
    )
    raw = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    mutated = bytes(raw[:cut]) if data.draw(st.booleans()) else bytes(raw)
    findings = scan_bytes(mutated)
    assert all(f.code.startswith("GGUF-") for f in findings)
