"""Differential fuzzing of pickles, NumPy files and joblib streams against their real loaders.

Hypothesis builds each file from its fields, with a marker-only payload (`os.system("touch
marker")`) placed where the streams may disagree:
- pickles: the payload's import and call spread over "neutral" opcodes (strings then `POP`,
  `MARK` ... `POP_MARK`, memo `PUT`/`GET`, `DUP`, `PROTO` changes, `FRAME`, `BINBYTES`), its
  names pushed directly, through the memo or as text `GLOBAL`; `pickle.load` reads it;
- `.npy`: format version 1 to 3, the object dtype and plain dtypes in several spellings, shapes,
  Fortran order, header padding, and a payload as the object array's pickle or after the data;
  `numpy.load(allow_pickle=True)` reads it;
- joblib: a `NumpyArrayWrapper` whose dtype, shape, order and alignment vary, with padding and
  array bytes that may disagree with them by a few bytes, and a payload inside the array bytes,
  right after them, or after the stream; `joblib.load` reads it.
The loader runs in a subprocess (`loader_oracle.py`); a test fails when it runs the payload and
the scanner neither reported `os.system` nor refused the file (a high finding that denies it).
CI runs LOADER_DIFF_EXAMPLES (default 25) per test; a longer campaign:
`LOADER_DIFF_EXAMPLES=3000 python -m pytest -q tests/scanners/test_loader_differential.py`.
A failure found is to be kept as a named case built by code at the end of this module; none
was found (3,000 examples per test, 2026-12-04).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus.pickleasm import glob, shell, uni
from tests.scanners.oracle_client import LoaderOracle
from tests.scanners.streams import BytesScanStream
from verifier.model import Finding, Severity
from verifier.pipeline import scan_stream
from verifier.scanners.sniff import HEAD_SIZE

EXAMPLES = int(os.environ.get("LOADER_DIFF_EXAMPLES", "25"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
Build = Callable[[Path], bytes]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoaderOracle]:
    runner = LoaderOracle(tmp_path_factory.mktemp("oracle"))
    yield runner
    runner.close()


def _findings(data: bytes, name: str) -> list[Finding]:
    _, findings, _ = scan_stream(BytesScanStream(data), name, data[:HEAD_SIZE])
    return findings


def _denied(findings: list[Finding]) -> bool:
    return any(f.severity.at_least(Severity.HIGH) for f in findings)


def check(oracle: LoaderOracle, build: Build, loader: str, name: str) -> None:
    """If the real loader runs the payload, the scanner must name it or deny the file."""
    marker_dir = oracle.marker_dir()
    data = build(marker_dir)
    answer = oracle.ask(data, loader, marker_dir)
    if answer.ran:
        findings = _findings(data, name)
        named = any(f.code == "PICKLE-DANGEROUS-GLOBAL" for f in findings)
        assert named or _denied(findings), (loader, sorted({f.code for f in findings}), data)


# --- pickles ------------------------------------------------------------------------------------


def _neutral(kind: str, n: int) -> bytes:
    """Opcodes that leave the stack and the outcome as they were."""
    pieces = {
        "string-pop": uni("x" * n) + b"0",
        "mark-pop-mark": b"(" + b"K" + bytes([n % 256]) + b"1",
        "binbytes-pop": b"B" + struct.pack("<I", n) + b"\0" * n + b"0",
        "none-pop": b"N0",
        "dup-pop": b"N20" + b"0",
        "put-pop": b"Nq" + bytes([200 + n % 50]) + b"0",
        "proto": b"\x80" + bytes([2 + n % 4]),
        "frame": b"\x95" + struct.pack("<Q", 0),
        "empty-dict-pop": b"}0",
    }
    return pieces[kind]


_NEUTRAL = st.tuples(
    st.sampled_from(
        [
            "string-pop",
            "mark-pop-mark",
            "binbytes-pop",
            "none-pop",
            "dup-pop",
            "put-pop",
            "proto",
            "frame",
            "empty-dict-pop",
        ]
    ),
    st.integers(0, 300),
)


@st.composite
def payload_pickles(draw: st.DrawFn) -> Build:
    """`os.system("touch marker")` with neutral opcodes between its parts."""
    protocol = draw(st.integers(0, 5))
    spelling = draw(st.sampled_from(["global", "stack-global", "memo", "inst"]))
    gaps = [
        b"".join(_neutral(kind, n) for kind, n in draw(st.lists(_NEUTRAL, max_size=3)))
        for _ in range(3)
    ]
    # Text opcodes only in protocols 0 and 1 (no PROTO, no binary neutrals before them).
    if protocol < 2:
        gaps = [b"" for _ in gaps]

    def build(m: Path) -> bytes:
        command = uni(shell(m)) if protocol >= 2 else b"S" + repr(shell(m)).encode() + b"\n"
        if spelling == "global" or protocol < 2:
            func = glob("os", "system")
        elif spelling == "stack-global":
            func = uni("os") + uni("system") + b"\x93"
        elif spelling == "memo":
            func = uni("os") + b"q\x01" + b"0" + uni("system") + b"q\x02" + b"0"
            func += gaps[2] + b"h\x01h\x02\x93"
        else:
            body = b"i" + b"os\nsystem\n"
            head = b"\x80" + bytes([protocol]) if protocol >= 2 else b""
            return head + gaps[0] + b"(" + command + gaps[1] + body + b"."
        head = b"\x80" + bytes([protocol]) if protocol >= 2 else b""
        return head + gaps[0] + func + gaps[1] + b"(" + command + b"tR."

    return build


@SETTINGS
@given(build=payload_pickles())
def test_pickles_match_pickle_load(oracle: LoaderOracle, build: Build) -> None:
    check(oracle, build, "pickle", "model.pkl")


# --- .npy ---------------------------------------------------------------------------------------

_OBJECT_DESCRS = [
    "|O",
    "<O",
    "O",
    "object",
    "object_",
    "O8",
    [("a", "O")],
    [("a", "<i4"), ("b", "O")],
]
_PLAIN_DESCRS = ["|u1", "<f4", "<i8", "|b1", [("a", "<i4")]]


@st.composite
def npy_files(draw: st.DrawFn) -> Build:
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0)]))
    descr = draw(st.sampled_from(_OBJECT_DESCRS + _PLAIN_DESCRS))
    shape = draw(st.sampled_from([(1,), (2,), (), (1, 1)]))
    fortran = draw(st.booleans())
    padding = draw(st.integers(0, 70))
    where = draw(st.sampled_from(["body", "after-data"]))

    def build(m: Path) -> bytes:
        header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
        header += b" " * padding + b"\n"
        size = (
            struct.pack("<H", len(header)) if version == (1, 0) else struct.pack("<I", len(header))
        )
        head = b"\x93NUMPY" + bytes(version) + size + header
        call = glob("os", "system") + b"(" + uni(shell(m)) + b"tR."
        payload = b"\x80\x02" + call
        if where == "body":
            return head + payload
        count = int(np.prod(shape)) if shape else 1
        return head + b"\0" * (count * 8) + payload

    return build


@SETTINGS
@given(build=npy_files())
def test_npy_files_match_numpy_load(oracle: LoaderOracle, build: Build) -> None:
    check(oracle, build, "numpy", "model.npy")


@st.composite
def npz_files(draw: st.DrawFn) -> Build:
    members = draw(
        st.lists(
            st.tuples(st.sampled_from(["a.npy", "a", "d/b.npy", "c.NPY"]), npy_files()),
            min_size=1,
            max_size=3,
        )
    )
    deflate = draw(st.booleans())

    def build(m: Path) -> bytes:
        buffer = io.BytesIO()
        method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", method) as archive:
            warnings.simplefilter("ignore")  # duplicate names are a variant, not a mistake
            for name, member in members:
                archive.writestr(name, member(m))
        return buffer.getvalue()

    return build


@SETTINGS
@given(build=npz_files())
def test_npz_files_match_numpy_load(oracle: LoaderOracle, build: Build) -> None:
    check(oracle, build, "numpy", "model.npz")


# --- joblib -------------------------------------------------------------------------------------


@st.composite
def joblib_streams(draw: st.DrawFn) -> Build:
    from joblib.numpy_pickle import NumpyArrayWrapper

    dtype = np.dtype(draw(st.sampled_from(["|u1", "<f4", "<i8", "O", "<U2"])))
    shape = draw(st.sampled_from([(0,), (1,), (3,), (2, 2), ()]))
    order = draw(st.sampled_from(["C", "F"]))
    alignment = draw(st.sampled_from([None, 0, 8, 16]))
    protocol = draw(st.integers(2, 5))
    pad = draw(st.integers(0, 20))
    write_pad_byte = draw(st.booleans())
    delta = draw(st.integers(-3, 3))
    where = draw(st.sampled_from(["in-array", "after-array", "after-stop", "nested"]))

    def build(m: Path) -> bytes:
        wrapper = NumpyArrayWrapper(
            np.ndarray, shape, order, dtype, numpy_array_alignment_bytes=alignment
        )
        head = pickle.dumps(wrapper, protocol=protocol)
        assert head.endswith(b".")
        payload = b"\x80\x02" + glob("os", "system") + b"(" + uni(shell(m)) + b"tR."
        if dtype.hasobject:
            inner = payload if where == "nested" else pickle.dumps(np.array([1], dtype=object))
            body = inner
        else:
            count = int(np.prod(shape)) if shape else 1
            declared = max(0, count * dtype.itemsize + delta)
            padding = (bytes([pad]) + b"\xff" * pad) if write_pad_byte else b""
            array = b"\0" * declared
            if where == "in-array":
                array = (payload + array)[: max(declared, len(payload))]
            body = padding + array
        tail = payload[2:] if where == "after-array" else b"."
        data = head[:-1] + body + tail
        return data + payload if where == "after-stop" else data

    return build


@SETTINGS
@given(build=joblib_streams())
def test_joblib_streams_match_joblib_load(oracle: LoaderOracle, build: Build) -> None:
    check(oracle, build, "joblib", "model.joblib")


# --- the oracle runs what the strategies build ---------------------------------------------------


def test_the_payloads_run_under_each_loader(oracle: LoaderOracle) -> None:
    # Each strategy can reach its loader's payload: otherwise the properties above hold vacuously.
    from joblib.numpy_pickle import NumpyArrayWrapper

    def plain(m: Path) -> bytes:
        return b"\x80\x02" + glob("os", "system") + b"(" + uni(shell(m)) + b"tR."

    def npy(m: Path) -> bytes:
        header = repr({"descr": "|O", "fortran_order": False, "shape": (1,)}).encode() + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + plain(m)

    def joblib_after_array(m: Path) -> bytes:
        wrapper = NumpyArrayWrapper(np.ndarray, (2,), "C", np.dtype("|u1"))
        head = pickle.dumps(wrapper, protocol=2)[:-1]
        padding = b"\x00" if wrapper.safe_get_numpy_array_alignment_bytes() is not None else b""
        return head + padding + b"\x01\x02" + plain(m)[2:]

    for build, loader, name in (
        (plain, "pickle", "model.pkl"),
        (npy, "numpy", "model.npy"),
        (joblib_after_array, "joblib", "model.joblib"),
    ):
        marker_dir = oracle.marker_dir()
        data = build(marker_dir)
        assert oracle.ask(data, loader, marker_dir).ran, loader
        check(oracle, build, loader, name)


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model.bin"])
def test_a_last_line_without_newline_is_read_as_joblib_reads_it(
    oracle: LoaderOracle, name: str
) -> None:
    """Found by the pickle campaign (tests/scanners/pickle_campaign.py): at the end of the file
    `pickle._Unpickler`, which joblib's unpickler extends, takes the last bytes as a line and
    drops the last one as its newline, so `(S'cmd'\\niposix\\nsystemX` calls posix.system; the
    C unpickler refuses. The scanner called these bytes text and allowed them."""

    def build(m: Path) -> bytes:
        return b"(" + uni(shell(m)) + b"iposix\nsystemX"

    marker_dir = oracle.marker_dir()
    assert oracle.ask(build(marker_dir), "joblib", marker_dir).ran
    check(oracle, build, "joblib", name)
    findings = _findings(build(oracle.marker_dir()), name)
    assert any(
        f.code == "PICKLE-DANGEROUS-GLOBAL" and f.evidence == "posix.system" for f in findings
    )
