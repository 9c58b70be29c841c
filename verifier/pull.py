"""After an allowed Hub scan: the verified files of its commit, placed where loaders read them.

`verifier pull` and `verifier.api.pull` scan with `verifier.pipeline.run_scan` (the path `scan`
takes), then call `refusal` and `place` here. Bytes come only from verifier's store of verified
blobs, hashed again as they are copied; nothing is downloaded again.
"""

from __future__ import annotations

from pathlib import Path

from verifier.errors import PlacementError
from verifier.model import Decision, DeclaredFile, FileResult, Placement, ScanReport, ScanStatus
from verifier.placement.interface import Destination, VerifiedFile, VerifiedSnapshot
from verifier.sources.quarantine import verified_blob


def refusal(report: ScanReport) -> str | None:
    """Why the scan's files may not be placed, or None when they may.

    Only a complete scan whose policy decided allow, without drift from a lockfile, is placed;
    in an audit-mode policy a deny is still a refusal.
    """
    if report.status is not ScanStatus.COMPLETE:
        return f"the scan did not complete (status {report.status.value})"
    if any(f.code == "LOCK-DRIFT" for f in report.findings):
        return "the model drifted from its lockfile entry"
    if report.verdict.decision is not Decision.ALLOW:
        return f"the policy {report.verdict.policy_name} decided deny"
    return None


def verified_snapshot(report: ScanReport, *, home: Path) -> VerifiedSnapshot:
    """The files an allowed Hub scan verified, where verifier's store under `home` keeps them.

    Each file's digest must be the one the commit declares (it names the cache's blob).

    Raises:
        PlacementError: not a Hub scan, or a file was not verified against its declared digest.
    """
    source = report.source
    if source.get("type") != "huggingface" or report.declared_files is None:
        raise PlacementError(f"{report.target}: only Hugging Face models can be pulled")
    declared = {d.path: d for d in report.declared_files}
    files = []
    for result in report.files:
        entry = declared.get(result.path)
        if entry is None:
            raise PlacementError(f"{result.path}: not declared by the commit; not placed")
        files.append(_verified_file(result, entry, home=home))
    return VerifiedSnapshot(
        repo_id=source["repo_id"],
        revision=source["revision_requested"],
        commit=source["commit"],
        files=tuple(files),
        declared=report.declared_files,
    )


def _verified_file(result: FileResult, declared: DeclaredFile, *, home: Path) -> VerifiedFile:
    etag = declared.sha256 if declared.lfs else declared.git_sha1
    measured = result.sha256 if declared.lfs else result.git_sha1
    if (
        not result.complete
        or result.sha256 is None
        or etag is None
        or measured != etag
        or result.size != declared.size
    ):
        raise PlacementError(
            f"{result.path}: not verified against its declared digest; nothing placed"
        )
    return VerifiedFile(
        path=result.path,
        size=result.size,
        sha256=result.sha256,
        etag=etag,
        source=verified_blob(home, result.sha256),
    )


def place(
    report: ScanReport, destination: Destination, *, home: Path, force: bool = False
) -> Placement:
    """Place the verified files of an allowed scan at `destination`.

    Raises:
        PlacementError: the scan may not be placed (see `refusal`), a verified copy is gone or
            changed, or the destination cannot be written.
        PlacementConflictError: the destination holds other bytes for the commit (not `force`).
    """
    reason = refusal(report)
    if reason is not None:
        raise PlacementError(f"{report.target}: not placed: {reason}")
    return destination.place(verified_snapshot(report, home=home), force=force)
