"""The source of a re-scan from kept bytes: what it carries over from the scan recorded before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from verifier.errors import SourceError
from verifier.model import (
    DeclaredFile,
    FileFormat,
    FileResult,
    Finding,
    ScanReport,
    ScanStatus,
    Severity,
)
from verifier.pipeline import UNDECIDED
from verifier.sources.huggingface.kept import KeptHubSource, not_kept_reason
from verifier.sources.huggingface.manifest import check_file, compare_listings

COMMIT = "a" * 40
WEIGHTS = DeclaredFile("model.safetensors", 4, "b" * 64, "c" * 40, lfs=True)
ESCAPE = DeclaredFile("../evil.bin", 1, "d" * 64, None, lfs=True)


def _recorded(findings: tuple[Finding, ...], *, declared: tuple[DeclaredFile, ...]) -> ScanReport:
    return ScanReport(
        scan_id="1" * 32,
        target="hf://acme/tiny",
        started_at="2026-12-04T00:00:00+00:00",
        finished_at="2026-12-04T00:00:01+00:00",
        tool_version="0.0.1",
        status=ScanStatus.COMPLETE,
        files=(),
        findings=findings,
        source={
            "type": "huggingface",
            "repo_id": "acme/tiny",
            "commit": COMMIT,
            "revision_requested": "main",
            "endpoint": "https://hub.test",
        },
        declared_files=declared,
        verdict=UNDECIDED,
    )


def test_the_listings_findings_are_carried_over_and_no_other(tmp_path: Path) -> None:
    other = DeclaredFile("model.safetensors", 5, "e" * 64, "c" * 40, lfs=True)
    listings = compare_listings([WEIGHTS], [other, DeclaredFile("x.bin", 1, None, "f" * 40, False)])
    assert {f.code for f in listings} == {"HF-DIGEST-MISMATCH", "HF-MISSING-FILE"}
    scanned = Finding("PICKLE-GLOBAL", Severity.CRITICAL, "an old scanner's finding")
    read = FileResult(WEIGHTS.path, 4, "e" * 64, None, FileFormat.SAFETENSORS)
    [mismatch] = check_file(WEIGHTS, read)  # the bytes read, not the listings: not carried
    assert mismatch.code == "HF-DIGEST-MISMATCH"
    previous = _recorded((*listings, scanned, mismatch), declared=(WEIGHTS, ESCAPE))
    source = KeptHubSource(f"hf://acme/tiny@{COMMIT}", previous, home=tmp_path, blob_store=None)
    snapshot = source.resolve()
    assert [f.path for f in snapshot.files] == [WEIGHTS.path]  # the escape is refused again
    assert "HF-PATH-ESCAPE" in {f.code for f in snapshot.findings}
    assert [f for f in snapshot.findings if f.code != "HF-PATH-ESCAPE"] == listings
    assert snapshot.record["revision_requested"] == COMMIT
    assert snapshot.pinned is not None and snapshot.pinned.commit == COMMIT


def test_nothing_kept_is_a_reason_and_a_local_scan_cannot_be_replayed(tmp_path: Path) -> None:
    previous = _recorded((), declared=(WEIGHTS,))
    reason = not_kept_reason(previous, home=tmp_path, blob_store=None)
    assert reason is not None and WEIGHTS.path in reason
    local = replace(previous, declared_files=None)
    assert not_kept_reason(local, home=tmp_path, blob_store=None) is not None
    with pytest.raises(SourceError, match="not of a Hub commit"):
        KeptHubSource("hf://acme/tiny", local, home=tmp_path, blob_store=None)
