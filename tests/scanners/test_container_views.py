"""The scanner's tar and zip member listings equal tarfile's and zipfile's, on mutated archives.

Seeds are archives built by code (`container_views.tar_seeds`, `zip_seeds`); Hypothesis
overwrites header bytes (the tar checksum recomputed or not, so mutations reach past the
first header) and the zip end records. Nothing is loaded: the readers only list members.
CI runs VIEW_EXAMPLES (default 150) per test; `VIEW_EXAMPLES=20000` runs a longer campaign,
and `python -m tests.scanners.container_views` a coverage-guided one with atheris.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.corpus.container_bypasses import count_below_directory, payload, plain_zip
from tests.scanners.container_views import tar_agrees, tar_seeds, zip_agrees, zip_seeds
from tests.scanners.test_container_bypasses import reports_payload, scan_bytes

EXAMPLES = int(os.environ.get("VIEW_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
#: Bytes an edit writes: field-shaped values as well as noise.
_VALUES = st.one_of(
    st.binary(min_size=1, max_size=12),
    st.sampled_from(
        [b"\0", b"/", b"..", b"0", b"5", b"x", b"g", b"L", b"\x80", b"\xff" * 4, b"PK\x05\x06"]
    ),
    st.integers(0, 2**32 - 1).map(lambda n: b"%011o\0" % n),
)


def _fix_checksums(data: bytearray) -> None:
    """Recompute the checksum of every block that looks like a ustar header."""
    for at in range(0, len(data) - 511, 512):
        block = data[at : at + 512]
        if block[257:262] == b"ustar":
            block[148:156] = b" " * 8
            data[at + 148 : at + 156] = b"%06o\0 " % sum(block)


@SETTINGS
@given(
    seed=st.sampled_from(tar_seeds()),
    edits=st.lists(st.tuples(st.integers(0, 4095), _VALUES), max_size=4),
    fix=st.booleans(),
)
def test_tar_walk_lists_what_tarfile_lists(
    seed: bytes, edits: list[tuple[int, bytes]], fix: bool
) -> None:
    data = bytearray(seed)
    for at, value in edits:
        at %= len(data)
        data[at : at + len(value)] = value[: len(data) - at]
    if fix:
        _fix_checksums(data)
    same, theirs, ours = tar_agrees(bytes(data))
    assert same, (theirs, ours, bytes(data))


@SETTINGS
@given(
    seed=st.sampled_from(zip_seeds()),
    edits=st.lists(st.tuples(st.integers(1, 400), _VALUES), max_size=4),
)
def test_zip_directory_lists_what_zipfile_lists(
    seed: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = bytearray(seed)
    for back, value in edits:  # the central directory and end records sit at the end
        at = max(0, len(data) - back)
        data[at : at + len(value)] = value[: len(data) - at]
    same, theirs, ours = zip_agrees(bytes(data))
    assert same, (theirs, ours, bytes(data))


# --- regression cases these tests found -------------------------------------------------------


def test_end_record_count_below_the_directory() -> None:
    """zipfile lists every entry in the directory's bytes, whatever the count says."""
    hostile = payload(Path("/nonexistent"))
    data = count_below_directory({"a.txt": b"hi\n", "b.pkl": hostile}, count=1)
    same, theirs, ours = zip_agrees(data)
    assert same, (theirs, ours)
    findings = scan_bytes(data)
    assert reports_payload(findings)
    assert "ZIP-INCONSISTENT" in {f.code for f in findings}


@pytest.mark.parametrize("name", [b"config.json\0x", b"data.pkl\0"])
def test_names_end_at_a_nul_as_zipfile_reads_them(name: bytes) -> None:
    placeholder = b"n" * len(name)
    data = plain_zip({placeholder.decode(): b"{}"}).replace(placeholder, name)
    same, theirs, ours = zip_agrees(data)
    assert same, (theirs, ours)
