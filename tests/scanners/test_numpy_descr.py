"""`.npy` dtypes against numpy itself: the scanner finds every object field numpy would unpickle.

numpy's own `descr_to_dtype` (what `numpy.load` calls on the header's `descr`) is the oracle
for generated descrs: whenever it builds a dtype with `hasobject`, the scanner must say OBJECT
or refuse (UNKNOWN); whenever the scanner says PLAIN, numpy must build no object dtype.
Whole files with each spelling of issue 11 are then loaded by `numpy.load` in a subprocess
with a marker-only payload, and scanned.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.samples import MARKER_NAME, os_system
from tests.scanners.streams import BytesScanStream
from verifier.model import FileFormat, Finding
from verifier.scanners.interface import ScanContext
from verifier.scanners.numpy import scan_npy
from verifier.scanners.numpy_descr import DescrKind, descr_kind

_ORDERS = ["", "<", ">", "|", "="]
_CODES = [*"?bBhHiIlLqQpPnNefdgFDGSUVmMOT", "a"]
_NAMES = ["object", "object_", "int32", "float64", "bool", "str", "bytes", "void", "int", "O"]


def numpy_has_object(descr: object) -> bool | None:
    """What numpy.load would decide: True/False, or None when numpy rejects the descr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bool(np.lib.format.descr_to_dtype(descr).hasobject)
        except Exception:  # numpy refuses the header: nothing is loaded
            return None


_one = st.builds(
    lambda order, code, size, unit: order + code + size + unit,
    st.sampled_from(_ORDERS),
    st.sampled_from(_CODES),
    st.sampled_from(["", "1", "2", "4", "8", "16"]),
    st.sampled_from(["", "", "[ns]", "[D]"]),
) | st.sampled_from(_NAMES)
_shape_prefix = st.sampled_from(["", "2", "(2,)", "(2,3)", "(1, 2)", " "])
_comma = st.lists(st.tuples(_shape_prefix, _one), min_size=1, max_size=3).map(
    lambda parts: ", ".join(p + t for p, t in parts) + ("," if len(parts) == 1 else "")
)
_type_string = _one | _comma
_shape = st.sampled_from([2, (2,), (2, 3), (), 0])


def _descrs() -> st.SearchStrategy[object]:
    return st.recursive(
        _type_string,
        lambda inner: (
            st.tuples(inner, _shape)
            | st.lists(
                st.tuples(st.sampled_from(["a", "b", ""]), inner)
                | st.tuples(st.sampled_from(["c", "d"]), inner, _shape),
                min_size=1,
                max_size=3,
            )
        ),
        max_leaves=6,
    )


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(descr=_descrs())
def test_scanner_agrees_with_numpy_or_refuses(descr: object) -> None:
    numpy = numpy_has_object(descr)
    ours = descr_kind(descr)
    if numpy is True:
        assert ours in (DescrKind.OBJECT, DescrKind.UNKNOWN), descr
    if ours is DescrKind.PLAIN:
        assert numpy is not True, descr


@pytest.mark.parametrize(
    "descr",
    ["<f4", "|b1", "<U10", "|S5", "|V16", "<M8[ns]", "<c16", "<i8"],
)
def test_plain_dtypes_numpy_writes_are_plain(descr: str) -> None:
    assert numpy_has_object(descr) is False
    assert descr_kind(descr) is DescrKind.PLAIN


def _header(descr: object, *, version: int, shape: tuple[int, ...] = (1,)) -> bytes:
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    raw = text.encode("utf-8" if version == 3 else "latin-1")
    pad = 64 - (len(raw) + 1 + (10 if version == 1 else 12)) % 64
    raw += b" " * pad + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(raw))
    return b"\x93NUMPY" + bytes([version, 0]) + length + raw


#: Issue 11's spellings of an object dtype that the scanner missed, and a few more.
OBJECT_SPELLINGS = {
    "object": "object",
    "object_": "object_",
    "comma": "i4,O",
    "comma-spaces": "i4 , O",
    "list-field": [("a", "<i4"), ("b", "|O")],
    "list-subarray-field": [("a", "<i4"), ("b", "|O", (2,))],
    "subarray-tuple": ("|O", (2,)),
    "subarray-string": "(2,)O",
    "nested": [("outer", [("inner", "object")])],
    "two-char-field": ["xO"],
    "string-dtype": "T",
}


def _npy(descr: object, *, version: int, payload: bytes) -> bytes:
    return _header(descr, version=version) + payload


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("descr", OBJECT_SPELLINGS.values(), ids=OBJECT_SPELLINGS.keys())
def test_object_spellings_are_found_and_their_pickle_analysed(
    descr: object, version: int, tmp_path: Path
) -> None:
    assert numpy_has_object(descr) is True
    data = _npy(descr, version=version, payload=os_system(tmp_path))
    findings = list(scan_npy(BytesScanStream(data), ScanContext("a.npy", FileFormat.NUMPY)))
    codes = {f.code for f in findings}
    assert "NUMPY-OBJECT-ARRAY" in codes
    assert _names(findings) == {"posix.system"} or _names(findings) == {"os.system"}


def _names(findings: list[Finding]) -> set[str]:
    return {f.evidence or "" for f in findings if f.code == "PICKLE-DANGEROUS-GLOBAL"}


_LOADER = """
import sys, numpy
try:
    numpy.load(sys.argv[1], allow_pickle=True)
except Exception:
    pass
"""


@pytest.mark.parametrize("version", [1, 3])
@pytest.mark.parametrize(
    "descr", ["object", "i4,O", ("|O", (2,))], ids=["object", "comma", "subarray"]
)
def test_numpy_load_runs_what_the_scanner_reports(
    descr: object, version: int, tmp_path: Path
) -> None:
    """The real loader, in a subprocess, on the same bytes: its payload only makes a marker."""
    path = tmp_path / "a.npy"
    path.write_bytes(_npy(descr, version=version, payload=os_system(tmp_path)))
    subprocess.run([sys.executable, "-c", _LOADER, str(path)], check=True, timeout=120)
    assert (tmp_path / MARKER_NAME).exists(), "numpy.load did not unpickle: not an oracle"
    findings = list(
        scan_npy(BytesScanStream(path.read_bytes()), ScanContext("a.npy", FileFormat.NUMPY))
    )
    assert "NUMPY-OBJECT-ARRAY" in {f.code for f in findings}


@pytest.mark.parametrize(
    "descr",
    [{"names": ["a"], "formats": ["O"]}, "<O(2,)", [("a",)], ("O",), 3],
    ids=["dict", "odd-subarray", "short-field", "short-tuple", "int"],
)
def test_uninterpretable_descrs_are_refused(descr: object) -> None:
    data = _npy(descr, version=1, payload=b"\x00" * 64)
    findings = list(scan_npy(BytesScanStream(data), ScanContext("a.npy", FileFormat.NUMPY)))
    assert [f.code for f in findings] == ["NUMPY-DTYPE-UNSUPPORTED"]


def test_python2_long_suffixes_in_shape_are_read_as_numpy_does() -> None:
    body = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"
    raw = body + b" " * (64 - (len(body) + 11) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + b"\x00" * 24
    with pytest.warns(UserWarning, match="Python 2"):
        assert np.load(io.BytesIO(data)).shape == (2, 3)
    findings = list(scan_npy(BytesScanStream(data), ScanContext("a.npy", FileFormat.NUMPY)))
    assert findings == []


def test_real_numpy_saves_are_clean() -> None:
    for array in (
        np.zeros((2, 3), dtype="<f4"),
        np.array([b"ab"], dtype="S2"),
        np.array(["x"], dtype="U3"),
        np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.zeros(1, dtype="M8[ns]"),
    ):
        buffer = io.BytesIO()
        np.save(buffer, array)
        data = buffer.getvalue()
        stream = BytesScanStream(data)
        assert list(scan_npy(stream, ScanContext("a.npy", FileFormat.NUMPY))) == [], array.dtype
