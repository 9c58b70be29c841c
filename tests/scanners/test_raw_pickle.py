"""Compressed files read raw by a pickle loader: inert heads pass, heads that read on are refused.

`joblib.dump(model, "model.pkl", compress=...)` writes a compressed stream under a pickle's
name. The compressed scanner analyses what it decompresses to, and `raw_pickle_reading` decides
whether `pickle.load` (or torch.load's fallback) given the raw bytes stops at once. The oracle
is CPython's two unpicklers in a subprocess (`pickle_oracle.py`, `find_class` recording names
and returning a stub): whenever the judgement is "stops", both must raise without importing
anything. CI runs RAW_PICKLE_EXAMPLES generated heads (default 200); a longer campaign:
`RAW_PICKLE_EXAMPLES=20000 python -m pytest -q tests/scanners/test_raw_pickle.py`.
"""

from __future__ import annotations

import bz2
import os
import pickle
import pickletools
import sys
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scanners.pickle_oracle import UnpicklerOracle
from tests.scanners.real_savers import JOBLIB_COMPRESSORS
from tests.scanners.streams_for_tests import reader_for
from verifier.model import Decision, FileFormat, Severity
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.scanners.compressed import CompressedScanner
from verifier.scanners.interface import ScanContext
from verifier.scanners.raw_pickle import RawPickleReading, raw_pickle_reading

#: What a payload's import looks like to the oracle (os.system is posix.system on Linux).
PAYLOAD = b"cposix\nsystem\n(S'true'\ntR."
CALLABLE = "posix.system"


def _judge(data: bytes) -> RawPickleReading:
    return raw_pickle_reading(data[:4096], size=len(data), read_at=lambda at, n: data[at : at + n])


@pytest.fixture(scope="module")
def oracle() -> Iterator[UnpicklerOracle]:
    with UnpicklerOracle() as worker:
        yield worker


def _joblib_file(tmp_path: Path, compress: str) -> Path:
    path = tmp_path / f"model-{compress}.pkl"
    joblib.dump({"coef": np.linspace(-1, 1, 4096)}, path, compress=(compress, 3))
    return path


@pytest.mark.parametrize("compress", JOBLIB_COMPRESSORS)
def test_what_joblib_compressors_write_stops_both_unpicklers_at_once(
    tmp_path: Path, oracle: UnpicklerOracle, compress: str
) -> None:
    data = _joblib_file(tmp_path, compress).read_bytes()
    reading = _judge(data)
    assert reading.stops, reading
    # Even with a payload appended, the unpicklers never get that far.
    names, raised = oracle.outcome(data + PAYLOAD)
    assert (names, raised) == (set(), True)


def test_a_length_that_lands_inside_the_file_reads_on(oracle: UnpicklerOracle) -> None:
    # bz2's `BZh91AY&SY` is BINBYTES of 0x3139685a bytes: in a file that large, the bytes after
    # it are the author's. The same shape, small: BINBYTES over filler, then a payload.
    data = b"B" + (10).to_bytes(4, "little") + b"\xff" * 10 + PAYLOAD
    reading = _judge(data)
    assert not reading.stops and reading.offset == 15
    assert CALLABLE in oracle.imports(data)
    # One byte of filler fewer and the argument runs past the end: both unpicklers stop.
    short = b"B" + (10).to_bytes(4, "little") + b"\xff" * 9
    assert _judge(short).stops
    assert oracle.outcome(short) == (set(), True)


def _sparse_bz2(path: Path, tail: bytes) -> int:
    """A bz2 stream in a sparse file of 1 GiB, `tail` where its BINBYTES reading lands."""
    stream = bz2.compress(pickle.dumps({"coef": [0.5] * 64}))
    skip = 5 + int.from_bytes(stream[1:5], "little")
    with path.open("wb") as out:
        out.write(stream)
        out.seek(skip)
        out.write(tail)
        out.truncate(1 << 30)
    return skip


def _compressed_findings(path: Path) -> list[tuple[str, Severity, int | None]]:
    with reader_for(path) as reader:
        ctx = ScanContext(path=path.name, format=FileFormat.COMPRESSED)
        return [(f.code, f.severity, f.offset) for f in CompressedScanner().scan(reader, ctx)]


def test_a_large_bz2_file_whose_binbytes_reach_a_payload_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    skip = _sparse_bz2(path, PAYLOAD)
    assert ("CONTAINER-AMBIGUOUS", Severity.HIGH, skip) in _compressed_findings(path)


def test_a_large_bz2_file_whose_binbytes_land_on_no_opcode_passes(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    _sparse_bz2(path, b"")  # the hole reads as NUL bytes, which are no opcode
    findings = _compressed_findings(path)
    assert [f for f in findings if f[1].at_least(Severity.MEDIUM)] == [], findings


def test_a_zlib_head_that_reads_on_is_refused_with_the_file(tmp_path: Path) -> None:
    # A zlib header whose CMF byte is `(` (MARK, a 1 KiB window) and FLG 0x91 (FROZENSET):
    # the walk reads on into the deflate data. The scanner says so and the policy denies.
    import zlib

    body = zlib.compress(pickle.dumps([1, 2, 3]), wbits=10)
    assert body[:2] == b"(\x91", body[:2]
    (tmp_path / "model.pkl").write_bytes(body)
    report = scan_target(
        str(tmp_path), policy=load_policy(default_policy_path()), recorder=None, workers=1
    )
    codes = {(f.code, f.severity) for f in report.findings}
    reading = _judge(body)
    if reading.stops:  # the deflate bytes after the header happen to stop the walk
        assert ("CONTAINER-AMBIGUOUS", Severity.HIGH) not in codes
    else:
        assert ("CONTAINER-AMBIGUOUS", Severity.HIGH) in codes
        assert report.verdict.decision is Decision.DENY


def test_lz4_without_the_lz4_package_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _joblib_file(tmp_path, "lz4")
    monkeypatch.setitem(sys.modules, "lz4", None)
    monkeypatch.setitem(sys.modules, "lz4.frame", None)
    findings = _compressed_findings(path)
    assert [(code, severity) for code, severity, _ in findings] == [
        ("ARCHIVE-UNSCANNABLE", Severity.HIGH)
    ]


# --- differential: generated heads against both unpicklers -----------------------------------

_OPCODE_BYTES = sorted({op.code.encode("latin-1") for op in pickletools.opcodes})
_HEADS = [b"x\x9c", b"x^", b"\x1f\x8b\x08", b"BZh9", b"]\x00\x00\x80\x00", b"\xfd7zXZ\x00",
          b"\x04\x22\x4d\x18", b"(\x91", b"X\x09", b"h\x05", b"(S", b"ZF"]  # fmt: skip
_PIECES = st.one_of(
    st.sampled_from(_OPCODE_BYTES),
    st.sampled_from(_HEADS),
    st.binary(min_size=1, max_size=4),
    st.integers(0, 40).map(lambda n: n.to_bytes(4, "little")),
    st.sampled_from([b"1\n", b"'a'\n", b"0\n", b"x\ny\n"]),
)
EXAMPLES = int(os.environ.get("RAW_PICKLE_EXAMPLES", "200"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pieces=st.lists(_PIECES, min_size=1, max_size=12), payload_first=st.booleans())
def test_stops_only_where_both_unpicklers_raise_first(
    oracle: UnpicklerOracle, pieces: list[bytes], payload_first: bool
) -> None:
    head = b"".join(pieces)
    data = head + PAYLOAD if not payload_first else head + b"(" + PAYLOAD
    reading = _judge(data)
    if reading.stops:
        names, raised = oracle.outcome(data)
        assert names == set() and raised, (data, reading)
