"""Mutated pickles and `.npy` files: what the unpickler imports, the scanner reports or blocks.

The check is `tests/scanners/pickle_campaign.disagreement` (its docstring explains the oracle and
the longer atheris campaign). Here Hypothesis mutates the campaign's seeds (byte flips,
insertions, deletions, splices of two seeds) and CI runs CAMPAIGN_EXAMPLES of them (default
100); `CAMPAIGN_EXAMPLES=20000` runs a longer campaign without atheris.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from tests.scanners import pickle_campaign
from tests.scanners.mutations import mutated as mutated_from
from tests.scanners.pickle_campaign import (
    disagreement,
    npy_reads,
    seeds,
    unpickler_imports,
)

SEEDS = seeds()


mutated = mutated_from(SEEDS)


@settings(
    max_examples=int(os.environ.get("CAMPAIGN_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=mutated)
def test_mutated_inputs_never_import_unreported(data: bytes) -> None:
    assert disagreement(data) is None


def test_the_oracle_sees_what_the_loaders_import() -> None:
    """The oracle records the names a loader would look up, calling nothing."""
    assert unpickler_imports(b"cposix\nsystem\n(S'x'\ntR.") == {"posix.system"}
    object_npy = SEEDS[-1]
    reads = npy_reads(object_npy)
    assert reads is not None and ("numpy._core.multiarray", "_reconstruct") in reads.called
    assert npy_reads(SEEDS[-2]) == pickle_campaign.Reads()  # a float array: nothing unpickled
    assert npy_reads(b"not a numpy file") is None
    called = pickle_campaign.unpickler_reads(b"cfoo\nbar\n(tR.")
    assert called.imported == called.called == {("foo", "bar")}
    imported_only = pickle_campaign.unpickler_reads(b"cat\ndog\nfish\n")
    assert imported_only.imported == {("at", "dog")} and imported_only.called == set()


def test_the_check_fails_when_the_scanner_misses_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scanner that reported nothing would be caught: the property can fail."""
    monkeypatch.setattr(pickle_campaign, "_scan", lambda data, name: [])
    reason = disagreement(b"cposix\nsystem\n(S'x'\ntR.")
    assert reason is not None and "posix.system" in reason


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_every_seed_agrees(index: int) -> None:
    assert disagreement(SEEDS[index]) is None


def test_a_module_name_that_is_no_identifier_is_still_an_import() -> None:
    """Found by the atheris campaign: `po#six` is no identifier, but `po#six.py` imports."""
    data = b"cpo#six\nxsem\n(S'x'\ntR."
    assert pickle_campaign.unpickler_reads(data).called == {("po#six", "xsem")}
    findings = pickle_campaign._scan(data, "model.bin")
    assert any(f.code == "PICKLE-UNKNOWN-GLOBAL" and f.evidence == "po#six.xsem" for f in findings)
    assert pickle_campaign.disagreement(data) is None


def test_a_huge_memo_index_is_read_without_the_c_unpickler() -> None:
    """Found by the campaign: the C unpickler would fill a 9 GB memo array for these bytes."""
    data = b"(dr0\nV!0\n0\nV!ei\x95\x0fV!ei\x95\x0f"
    assert pickle_campaign._bounded(data) == (data, False)
    assert pickle_campaign.disagreement(data) is None


def test_inst_after_a_mark_then_no_pickle_is_a_call() -> None:
    """Found by the campaign: INST imports and calls at once; the bytes after it may be junk.

    The identification called this text (the walk ended in an error with no call seen), so an
    unknown callable ran unreported before the unpickler failed.
    """
    data = b"(S'x'\niwpeVV3\nxdp0\niw"
    assert ("wpeVV3", "xdp0") in pickle_campaign.unpickler_reads(data).called
    findings = pickle_campaign._scan(data, "model.bin")
    assert any(f.code == "PICKLE-UNKNOWN-GLOBAL" and f.evidence == "wpeVV3.xdp0" for f in findings)
    assert pickle_campaign.disagreement(data) is None


def test_an_oversized_bytearray_is_cut_before_the_unpicklers_allocate_it() -> None:
    """Found by the campaign: BYTEARRAY8 with a length of 2**40 would allocate a terabyte."""
    data = b"\x80\x05cposix\nsystem\n\x96" + (1 << 40).to_bytes(8, "little") + b"x"
    assert pickle_campaign._bounded(data) == (data[:-10], True)
    assert pickle_campaign.unpickler_imports(data) == {"posix.system"}


@pytest.mark.parametrize(
    "data",
    [b"(S'x'\nic1\nc__cod(", b"(S'x'\nibuiltins\nevalX", b"cposix\nsystemX"],
    ids=["unknown", "dangerous-name", "global-only"],
)
def test_a_last_line_without_newline_is_a_line(data: bytes) -> None:
    """Found by the campaign: pickle._Unpickler reads the file's last bytes as a line."""
    reads = pickle_campaign.unpickler_reads(data)
    module, name = next(iter(reads.imported))
    findings = pickle_campaign._scan(data, "model.bin")
    assert any(f.evidence == f"{module}.{name}" for f in findings), findings


def test_a_memo_key_with_leading_zeros_is_a_line_the_unpickler_reads() -> None:
    """Found by the campaign: PUT and GET read `int(x)`, base 10, unlike INT's `int(x, 0)`.

    `p0999...` is a memo key for `pickle._Unpickler` (joblib's), so the identification that
    called the line invalid, and the file text, let the call after it through.
    """
    data = b"(dp0" + b"9" * 40 + b"\ncposix\nsystem\n(S'x'\ntR."
    assert ("posix", "system") in pickle_campaign.unpickler_reads(data).called
    findings = pickle_campaign._scan(data, "model.bin")
    assert any(
        f.code == "PICKLE-DANGEROUS-GLOBAL" and f.evidence == "posix.system" for f in findings
    )


def test_a_memo_key_the_c_unpickler_reads_to_a_nul_keeps_it_out() -> None:
    """Found by the campaign: `p0999999999` then NULs is key 999999999 for the C unpickler
    (it stops at the NUL), a 16 GB memo array; pickletools refuses the line."""
    data = b"(dp0999999999" + b"\x00" * 8 + b"99\nVx\np1\n."
    assert pickle_campaign._bounded(data) == (data, False)
