"""Pickle identification against CPython's unpicklers: whatever they would import, we analyse.

Samples are a pickle payload behind "comment" prefixes that leave the stack as it was (a
string then POP, MARK then POP_MARK, PROTO 0 to 5, BINBYTES then POP, ...), with INT, LONG and
FLOAT arguments spelled every way either unpickler reads them, and arguments longer than the
64 KiB identification window. The oracle (tests/scanners/pickle_oracle.py) loads each sample
with the real unpicklers in a subprocess, recording imports and calling nothing; whenever it
would import the payload's callable, the scanner must identify the file as a pickle and either
report that callable or refuse the stream (PICKLE-MALFORMED, high). CI runs SNIFF_EXAMPLES
(default 150); `SNIFF_EXAMPLES=5000` runs a longer campaign.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.scanners.pickle_oracle import UnpicklerOracle
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.pipeline import scan_stream
from verifier.scanners.sniff import HEAD_SIZE, identify

CALLABLE = "posix.system"
WINDOW = HEAD_SIZE + 10


@pytest.fixture(scope="module")
def oracle() -> Iterator[UnpicklerOracle]:
    with UnpicklerOracle() as worker:
        yield worker


def _scan(data: bytes) -> tuple[FileFormat, list[Finding]]:
    fmt, findings, _ = scan_stream(BytesScanStream(data), "model.bin", data[:HEAD_SIZE])
    return fmt, findings


def _reported(findings: list[Finding]) -> bool:
    return any(f.code == "PICKLE-DANGEROUS-GLOBAL" and f.evidence == CALLABLE for f in findings)


def _refused(findings: list[Finding]) -> bool:
    return any(f.code == "PICKLE-MALFORMED" for f in findings)


_INT_SPELLINGS = [
    b"0x1", b" 1", b"1 ", b"1_0", b"010", b"+1", b"\t1", b"1\x00zz", b"0o7", b"0b1",
    b"-0x1", b"001", b"00", b"01", b"0X_f", b"\v7\f",
]  # fmt: skip
_LONG_SPELLINGS = [b"1L", b"0x1L", b" 2 L", b"1_0", b"1\x00x", b"0b11L", b"-5"]
_FLOAT_SPELLINGS = [b"1.5", b" 1.5 ", b"1_0", b"inf", b"1\x00z", b"1e5", b"-nan"]


def _padded(spelling: bytes, pad: int) -> bytes:
    return b" " * pad + spelling


@st.composite
def _fragment(draw: st.DrawFn) -> bytes:
    """One stack-neutral prefix: pushes something and pops it, or changes nothing."""
    kind = draw(st.sampled_from(["proto", "int", "long", "float", "S", "V", "B", "X", "small"]))
    long_arg = draw(st.sampled_from([0, 10, WINDOW]))
    if kind == "proto":
        return b"\x80" + bytes([draw(st.integers(0, 5))])
    if kind == "int":
        return b"I" + _padded(draw(st.sampled_from(_INT_SPELLINGS)), long_arg) + b"\n0"
    if kind == "long":
        return b"L" + _padded(draw(st.sampled_from(_LONG_SPELLINGS)), long_arg) + b"\n0"
    if kind == "float":
        return b"F" + _padded(draw(st.sampled_from(_FLOAT_SPELLINGS)), long_arg) + b"\n0"
    if kind == "S":
        return b"S'" + b"c" * long_arg + b"'\n0"
    if kind == "V":
        return b"V" + b"comment " * (long_arg // 8) + b"\n0"
    if kind == "B":
        return b"B" + struct.pack("<I", long_arg) + b"\x00" * long_arg + b"0"
    if kind == "X":
        return b"X" + struct.pack("<I", long_arg) + b"x" * long_arg + b"0"
    return draw(st.sampled_from([b"N0", b"(1", b"(N1", b"]0", b"}0", b"\x88\x89\x8f00"]))


@st.composite
def _payload(draw: st.DrawFn) -> bytes:
    """A call of the marker callable, spelled in protocol 0 or with STACK_GLOBAL."""
    arg = draw(
        st.sampled_from(
            [
                b"S'x'\n",
                b"I" + draw(st.sampled_from(_INT_SPELLINGS)) + b"\n",
                b"L" + draw(st.sampled_from(_LONG_SPELLINGS)) + b"\n",
            ]
        )
    )
    if draw(st.booleans()):
        return b"cposix\nsystem\n(" + arg + b"tR."
    return b"\x8c\x05posix\x8c\x06system\x93(" + arg + b"tR."


@settings(
    max_examples=int(os.environ.get("SNIFF_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(prefix=st.lists(_fragment(), max_size=3), payload=_payload())
def test_what_the_unpickler_imports_is_reported_or_refused(
    oracle: UnpicklerOracle, prefix: list[bytes], payload: bytes
) -> None:
    data = b"".join(prefix) + payload
    assume(CALLABLE in oracle.imports(data))
    fmt, findings = _scan(data)
    assert fmt is FileFormat.PICKLE, (fmt, data[:80])
    assert _reported(findings) or _refused(findings), [f.code for f in findings]


# The bypass classes of issue 11, each as the smallest file that shows it. The scanner must
# name the callable (not merely refuse the stream).
BYPASSES = {
    "int-hex": b"cposix\nsystem\n(I0x1\ntR.",
    "int-whitespace-underscore": b"(I 1_0 \n0cposix\nsystem\n(S'x'\ntR.",
    "int-nul-ends-line": b"I1\x00junk\n0cposix\nsystem\n(S'x'\ntR.",
    "long-hex": b"L0x10L\n0cposix\nsystem\n(S'x'\ntR.",
    "proto-0-header": b"\x80\x00" + b"N0" * 5000 + b"cposix\nsystem\n(S'x'\ntR.",
    "proto-1-header": b"\x80\x01" + b"N0" * 5000 + b"cposix\nsystem\n(S'x'\ntR.",
    "comment-string-pop": b"S'" + b"c" * 60_000 + b"'\n0cposix\nsystem\n(S'x'\ntR.",
    "first-argument-past-window": b"X"
    + struct.pack("<I", 200_000)
    + b"x" * 200_000
    + b"0cposix\nsystem\n(S'x'\ntR.",
    "proto4-binbytes-no-frame": b"\x80\x04B"
    + struct.pack("<I", 100_000)
    + b"\x00" * 100_000
    + b"0\x8c\x05posix\x8c\x06system\x93\x8c\x01x\x85R.",
}


@pytest.mark.parametrize("data", BYPASSES.values(), ids=BYPASSES.keys())
def test_bypass_classes_are_identified_and_reported(oracle: UnpicklerOracle, data: bytes) -> None:
    assert CALLABLE in oracle.imports(data)  # the sample really is one
    fmt, findings = _scan(data)
    assert fmt is FileFormat.PICKLE
    assert _reported(findings), [(f.code, f.evidence) for f in findings]


@pytest.mark.parametrize(
    "data",
    [
        b"I" + b" " * 70_000 + b"1\n0cposix\nsystem\n(S'x'\ntR.",
        b"V" + b"comment" * 12_000 + b"\n0cposix\nsystem\n(S'x'\ntR.",
    ],
    ids=["int-padded-past-window", "unicode-line-past-window"],
)
def test_first_line_past_the_window_is_a_pickle(oracle: UnpicklerOracle, data: bytes) -> None:
    assert CALLABLE in oracle.imports(data)
    assert identify(data[:HEAD_SIZE], len(data)) is FileFormat.PICKLE


@pytest.mark.parametrize(
    "data",
    [
        b"In the beginning " * 5000,  # one line past the window, prose, starts with INT's byte
        b"Version 1.0\nThe model is good.\n" * 4000,
        b"the\nof\nand\nto\n" * 100,
        b"F" + b"an extremely long first line " * 3000,
    ],
    ids=["prose-line", "version-lines", "vocabulary", "long-prose-float-byte"],
)
def test_text_no_unpickler_reads_stays_text(oracle: UnpicklerOracle, data: bytes) -> None:
    assert oracle.imports(data) == set()
    assert identify(data[:HEAD_SIZE], len(data)) is FileFormat.TEXT


def test_a_text_vocabulary_that_imports_an_unknown_module_stays_text(
    oracle: UnpicklerOracle,
) -> None:
    # The unpickler would try `import at` and stop at `f` (no opcode) before any call: a
    # word list is not made a pickle for that. An import of a dangerous module is (below).
    data = b"cat\ndog\nfish\n" * 100
    assert oracle.imports(data) == {"at.dog"}
    assert identify(data[:HEAD_SIZE], len(data)) is FileFormat.TEXT


def test_an_import_of_a_dangerous_module_alone_is_a_pickle(oracle: UnpicklerOracle) -> None:
    data = b"cos\nsystem\n" + b"plain text after the import\n" * 100
    assert oracle.imports(data) == {"os.system"}
    fmt, findings = _scan(data)
    assert fmt is FileFormat.PICKLE
    assert any(f.code == "PICKLE-DANGEROUS-GLOBAL" for f in findings)
