"""Mutated joblib files and `.npz` archives: what their loaders call, the scanner reports or blocks.

The check is `tests/scanners/joblib_campaign.disagreement` (its docstring explains the oracles
and the longer atheris campaign). Hypothesis mutates the campaign's seeds (byte flips,
insertions, deletions, splices of two seeds); CI runs JOBLIB_CAMPAIGN_EXAMPLES of them (default
60), `JOBLIB_CAMPAIGN_EXAMPLES=5000` runs a longer campaign without atheris.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings

from tests.scanners import joblib_campaign, pickle_campaign
from tests.scanners.joblib_campaign import disagreement, joblib_reads, npz_reads, seeds
from tests.scanners.mutations import mutated as mutated_from

SEEDS = seeds()
_CALL = b"\x80\x02cposix\nsystem\nq\x00X\x01\x00\x00\x00xq\x01\x85q\x02Rq\x03."


mutated = mutated_from(SEEDS)


@settings(
    max_examples=int(os.environ.get("JOBLIB_CAMPAIGN_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=mutated)
def test_mutated_inputs_never_call_unreported(data: bytes) -> None:
    assert _in_a_child(data) is None


def _in_a_child(data: bytes) -> str | None:
    """`disagreement(data)`, computed in a forked child first.

    The oracle runs NumPy's own dtype code, which the campaign found crashing on hostile
    states (see the named cases below); a state it has not seen yet must not take the test
    run down with it. A child killed by a signal is a loader crash on this input: what the
    unpickler called before it is then asked of the pickle campaign's oracle, whose stand-ins
    replace NumPy too. A child that says the scan and the loader disagree is asked again here,
    for the reason.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(0 if disagreement(data) is None else 1)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return pickle_campaign.disagreement(data)
    return None if os.waitstatus_to_exitcode(status) == 0 else disagreement(data)


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_every_seed_agrees(index: int) -> None:
    assert disagreement(SEEDS[index]) is None


def test_the_oracles_see_what_the_loaders_call() -> None:
    """joblib's unpickler reads array bytes and nested object pickles; `.npz` keys are read."""
    payload_after_array = SEEDS[3]
    reads = joblib_reads(payload_after_array)
    assert reads is not None and ("posix", "system") in reads.called
    zfile = joblib_reads(joblib_campaign._zfile(_CALL))
    assert zfile is not None and zfile.called == {("posix", "system")}
    compressed = joblib_reads(SEEDS[5])  # gzip, an object array holding an OrderedDict
    assert compressed is not None and ("collections", "OrderedDict") in compressed.called
    npz = npz_reads(SEEDS[-1])
    assert npz is not None and ("collections", "OrderedDict") in npz.called
    assert npz_reads(b"not a zip") is None


def test_the_check_fails_when_the_scanner_misses_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scanner that reported nothing would be caught: the property can fail."""
    monkeypatch.setattr(joblib_campaign, "_scan", lambda data, name: [])
    reason = disagreement(SEEDS[3])
    assert reason is not None and "posix.system" in reason


def test_array_bytes_past_the_end_are_refused_before_allocating() -> None:
    """The oracle never allocates what a hostile shape declares: joblib would fail on the data."""
    import numpy as np

    data = joblib_campaign._joblib_dump(np.zeros(4, dtype="<f8"))
    huge = data.replace(b"K\x04\x85", b"J\x00\x00\x00\x40\x85", 1)  # shape (4,) -> (2**30,)
    assert huge != data
    reads = joblib_reads(huge + _CALL)
    assert reads is not None and ("posix", "system") not in reads.called


def test_npz_member_read_by_its_key_even_without_npy_suffix() -> None:
    """`numpy.load(...)["a"]` opens a member named `a` as well as `a.npy`: both are keys."""
    import numpy as np

    inner = io.BytesIO()
    np.save(inner, np.array([None], dtype=object), allow_pickle=True)
    body = inner.getvalue()
    header_end = body.index(b"\n") + 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a", body[:header_end] + _CALL)
    data = buffer.getvalue()
    reads = npz_reads(data)
    assert reads is not None and ("posix", "system") in reads.called
    assert disagreement(data) is None
    findings = pickle_campaign._scan(data, "arrays.npz")
    assert any(f.severity in pickle_campaign.BLOCKING for f in findings)


_SPIN_ORACLE = r"""
import io, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import joblib
try:
    joblib.load(io.BytesIO(sys.stdin.buffer.read()))
except MemoryError:
    print("MemoryError")
except Exception as exc:
    print(type(exc).__name__)
else:
    print("loaded")
"""


def test_bytes_after_a_gzip_stream_make_joblib_spin_and_the_oracle_stops() -> None:
    """Found by the atheris campaign (an out-of-memory, not a bypass): joblib's zlib reader
    feeds an ended stream its own leftover bytes, which double each turn. `joblib.load` itself
    runs out of memory (checked in a subprocess under a 1 GiB limit) before it unpickles
    anything; the oracle stops at that turn and reads nothing either."""
    import numpy as np

    data = joblib_campaign._joblib_dump({"a": np.arange(3)}, ("gzip", 3)) + b"\xfb"
    answer = subprocess.run(
        [sys.executable, "-c", _SPIN_ORACLE], input=data, capture_output=True, timeout=120
    )
    assert answer.stdout.decode().strip() == "MemoryError"
    assert joblib_reads(data) == pickle_campaign.Reads()
    assert disagreement(data) is None


def _dtype_names_outside_fields() -> bytes:
    """A joblib dump of a structured array whose dtype state names a field its fields lack.

    Written by joblib, then the pickled dtype state's fields dict given another key (the
    campaign's input did it through a mutated memo index).
    """
    import numpy as np

    array = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")])
    data = joblib_campaign._joblib_dump(array)
    names = b"\x8c\x01a\x94\x8c\x01b\x94\x86\x94}\x94("  # ("a", "b"), then the fields dict
    start = data.index(names) + len(names)
    key_a = data[start : start + 2]  # BINGET of the memoised "a"
    key_b = data.index(b"\x86\x94h" + bytes([key_a[1] + 1]), start) + 2  # BINGET of "b"
    return data[:key_b] + key_a + data[key_b + 2 :]  # fields {"a": ..., "a": ...}


_CRASH_ORACLE = r"""
import io, sys, joblib
joblib.load(io.BytesIO(sys.stdin.buffer.read()))
print("loaded")
"""


def test_a_dtype_whose_names_its_fields_lack_crashes_joblib_and_the_oracle_stops() -> None:
    """Found by the atheris campaign (a crash of the loader, not a bypass): NumPy trusts a
    pickled dtype's state, and `numpy.empty` with names missing from the fields kills the
    process (SIGSEGV, checked in a subprocess). The oracle refuses that dtype before using it
    and reads on no further, as the real loader cannot."""
    data = _dtype_names_outside_fields()
    answer = subprocess.run(
        [sys.executable, "-c", _CRASH_ORACLE], input=data, capture_output=True, timeout=120
    )
    assert answer.returncode == -11, answer  # SIGSEGV
    reads = joblib_reads(data + _CALL)
    assert reads is not None and reads.called == set()
    assert disagreement(data) is None
