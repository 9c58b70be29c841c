"""GGUF against the reference reader: every chat template `gguf.GGUFReader` reads is analysed.

A GGUF file's code is its chat template: llama.cpp and llama-cpp-python render the
`tokenizer.chat_template*` values they read from the metadata. Hypothesis builds files around a
hostile template (other keys before it, its key spelled as a named template, duplicate keys,
arrays, alignment, tensors) and then overwrites bytes (lengths, types, counts). The reference
reader, `gguf.GGUFReader` from the `gguf` package that llama.cpp ships, is the oracle; it only
parses, nothing is rendered. Whenever it reads the hostile template under a chat-template key,
the scanner must report it or refuse the file (a high `GGUF-` finding). CI runs GGUF_EXAMPLES
(default 150); `GGUF_EXAMPLES=5000` runs a longer campaign.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from benchmarks.corpus import chat_templates
from benchmarks.corpus.gguf_files import gguf_kv_string, gguf_string, hand_made
from tests.capped_child import CappedChild
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding, Severity
from verifier.scanners.gguf import GgufScanner
from verifier.scanners.interface import ScanContext

EXAMPLES = int(os.environ.get("GGUF_EXAMPLES", "150"))
HOSTILE = chat_templates.malicious(Path("/nonexistent"))["lipsum-globals"]
REPORTED = frozenset({"GGUF-TEMPLATE-INJECTION", "CHAT-TEMPLATE-INJECTION"})


def _reference_templates_here(data: bytes) -> list[str] | None:
    """GGUFReader in this process (only ever called in the capped child)."""
    from gguf import GGUFReader, GGUFValueType

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        path.write_bytes(data)
        try:
            reader = GGUFReader(path)
        except Exception:  # any refusal (MemoryError too): the loader reads no template
            return None
        found = []
        for name, field in reader.fields.items():
            if not name.startswith("tokenizer.chat_template"):
                continue
            if field.types[:1] != [GGUFValueType.STRING]:
                continue
            part: np.ndarray = field.parts[field.data[0]]
            found.append(bytes(part).decode("utf-8", "replace"))
        del reader  # its memory map holds the file open
    return found


_oracle = CappedChild()


def reference_templates(data: bytes) -> list[str] | None:
    """The chat-template strings GGUFReader reads, or None when it rejects the file.

    Runs in one long-lived child process whose address space is capped (tests/capped_child.py); a
    child that dies is replaced and its file counts as rejected.
    """
    return _oracle.run(_reference_templates_here, data)


@pytest.fixture(scope="module", autouse=True)
def _stop_oracle() -> Iterator[None]:
    yield
    _oracle.close()


def scan(data: bytes) -> list[Finding]:
    ctx = ScanContext(path="model.gguf", format=FileFormat.GGUF)
    return list(GgufScanner().scan(BytesScanStream(data), ctx))


def reported_or_refused(findings: list[Finding]) -> bool:
    return any(
        f.code in REPORTED or (f.code.startswith("GGUF-") and f.severity.rank >= Severity.HIGH.rank)
        for f in findings
    )


_OTHER_KVS = [
    gguf_kv_string("general.architecture", "llama"),
    gguf_string("general.alignment") + struct.pack("<II", 4, 64),
    gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 2) + b"\x00" * 8,
    gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + gguf_string("a") * 2,
    gguf_kv_string("tokenizer.chat_template", chat_templates.GEMMA),
]


@st.composite
def gguf_files(draw: st.DrawFn) -> bytes:
    key = draw(
        st.sampled_from(
            [
                "tokenizer.chat_template",
                "tokenizer.chat_template.tool_use",
                "tokenizer.chat_templates",
            ]
        )
    )
    kvs = draw(st.lists(st.sampled_from(_OTHER_KVS), max_size=4))
    kvs.insert(draw(st.integers(0, len(kvs))), gguf_kv_string(key, HOSTILE))
    tensors = draw(
        st.sampled_from([[], [("a", [16], 0, 0)], [("a", [16], 0, 0), ("b", [8], 0, 64)]])
    )
    version = draw(st.sampled_from([3, 3, 2]))
    data = hand_made(kvs, tensors, data=b"\x01" * 128, version=version)
    raw = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, min(len(raw), 2048) - 1))
        value = draw(
            st.one_of(
                st.binary(min_size=1, max_size=8),
                st.sampled_from(
                    [b"\x08\x00\x00\x00", b"\x09\x00\x00\x00", b"\xff" * 8, b"\x00" * 8]
                ),
            )
        )
        raw[at : at + len(value)] = value[: len(raw) - at]
    return bytes(raw)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=gguf_files())
def test_every_template_the_reference_reader_reads_is_reported(data: bytes) -> None:
    templates = reference_templates(data)
    read = templates is not None and any(HOSTILE in t for t in templates)
    event("reference reader read the hostile template" if read else "it did not")
    if not read:
        return
    findings = scan(data)
    assert reported_or_refused(findings), (sorted({f.code for f in findings}), data[:200])


def test_the_oracle_reads_the_hostile_template() -> None:
    """Not vacuous: the reference reader does read the template of an untouched file."""
    data = hand_made([*_OTHER_KVS[:2], gguf_kv_string("tokenizer.chat_template", HOSTILE)])
    assert reference_templates(data) == [HOSTILE]
    assert reported_or_refused(scan(data))
