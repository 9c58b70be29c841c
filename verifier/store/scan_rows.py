"""The rows a scan is recorded as: one function for every way a scan is written.

`scan_rows` turns a finished (or failed) scan into the rows of each table, named as in
`scan_tables`. Two executors write them: `scan_tables.insert_scan` through SQLAlchemy Core
(PostgreSQL, the service, and SQLite outside the scan path) and `sqlite_recorder` through the
standard library's `sqlite3` with statements compiled from the same tables, so that a scan
recorded in SQLite never imports SQLAlchemy. Nothing here imports a database library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from verifier.errors import BansChangedError
from verifier.facts import details_document, facts_document, signature_document, subject_of
from verifier.model import (
    Decision,
    DeclaredFile,
    FileResult,
    Finding,
    LineageEdge,
    Provenance,
    ScanReport,
    ScanStatus,
    Severity,
    SignatureResult,
    Verdict,
)

if TYPE_CHECKING:
    from verifier.lineage.attribution import OlderReference, RecordedReferences
    from verifier.lineage.fingerprint import Fingerprint
    from verifier.store.fingerprint_cache import FingerprintCache

#: The tables a scan is recorded in, in the order `scan_rows` gives them.
RECORDED_TABLES = (
    "scans",
    "scan_files",
    "findings",
    "decisions",
    "signatures",
    "scan_facts",
    "model_details",
    "source_revisions",
    "lineage_edges",
    "declared_files",
    "weight_fingerprints",
)

#: Digests looked up per query by `identical_files` (well under every driver's parameter limit).
FILES_PER_LOOKUP = 500

#: The verdict of a failed scan, or of one without a decision of its own: denied.
FAIL_CLOSED = Verdict(
    decision=Decision.DENY, policy_name="(none)", policy_digest="", mode="enforce", reasons=()
)

#: Code of the finding that carries a failed scan's error.
SCAN_FAILED_CODE = "SCAN-FAILED"


def parse_timestamp(value: str) -> datetime:
    """Read an ISO-8601 timestamp that carries its UTC offset.

    Args:
        value: Such as `2024-05-01T12:00:00.123456+00:00` or `2024-05-01T12:00:00Z`.

    Returns:
        The same instant in UTC.

    Raises:
        ValueError: The text is not ISO-8601 or has no UTC offset.
    """
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """The canonical text of a recorded instant: `datetime.isoformat()` in UTC (`+00:00`)."""
    return moment.astimezone(UTC).isoformat()


def bans_changed(scan_id: str) -> BansChangedError:
    """The error of a decision not recorded because a ban was made or lifted after it looked
    up the bans in force, worded the same by every recorder."""
    return BansChangedError(
        f"a ban was made or lifted while a decision of scan {scan_id} was being recorded; "
        "nothing was recorded: decide again"
    )


def check_file_findings(report: ScanReport) -> None:
    """Refuse a report whose per-file findings would not read back as recorded.

    Findings are stored once, from `report.findings`; a file's findings are read back as
    those attributed to its path, in order.

    Raises:
        ValueError: A file's findings differ from the report's findings attributed to it.
    """
    for result in report.files:
        attributed = tuple(f for f in report.findings if f.file == result.path)
        if result.findings != attributed:
            raise ValueError(
                f"findings of file {result.path!r} differ from the findings of the report "
                "attributed to it; every file finding must also be in report.findings"
            )


def _scan_values(report: ScanReport, *, error: str | None) -> dict[str, Any]:
    """The `scans` row of `report`; its type of source is `report.source["type"]`, if any."""
    return {
        "id": report.scan_id,
        "target": report.target,
        "source_type": report.source.get("type", "unknown"),
        "source": dict(report.source),
        "started_at": parse_timestamp(report.started_at),
        "finished_at": parse_timestamp(report.finished_at),
        "tool_version": report.tool_version,
        "status": report.status.value,
        "error": error,
    }


def _file_values(scan_id: str, result: FileResult) -> dict[str, Any]:
    """The `scan_files` row of `result` (its findings are rows of `findings`)."""
    return {
        "scan_id": scan_id,
        "path": result.path,
        "size": result.size,
        "sha256": result.sha256,
        "git_sha1": result.git_sha1,
        "format": result.format.value,
        "complete": result.complete,
    }


def _finding_values(scan_id: str, finding: Finding) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "file_path": finding.file,
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "member": finding.member,
        "byte_offset": finding.offset,
        "evidence": finding.evidence,
    }


def decision_values(scan_id: str, verdict: Verdict, *, decided_at: datetime) -> dict[str, Any]:
    """The `decisions` row of `verdict`, decided at `decided_at`."""
    return {
        "scan_id": scan_id,
        "decided_at": decided_at,
        "decision": verdict.decision.value,
        "policy_name": verdict.policy_name,
        "policy_digest": verdict.policy_digest,
        "mode": verdict.mode,
        "reasons": [
            {
                "rule_id": reason.rule_id,
                "effect": reason.effect,
                "severity": reason.severity.value,
                "message": reason.message,
                "evidence": list(reason.evidence),
                "waived_by": reason.waived_by,
            }
            for reason in verdict.reasons
        ],
        "environment": verdict.environment,
        "waivers": [
            {
                "id": w.waiver_id,
                "rule": w.rule_id,
                "subject": w.subject,
                "status": w.status,
                "expires": w.expires,
                "approved_by": w.approved_by,
                "ticket": w.ticket,
            }
            for w in verdict.waivers
        ],
    }


def _signature_values(scan_id: str, result: SignatureResult) -> dict[str, Any]:
    document = signature_document(result)
    assert document is not None  # a result was given
    return {"scan_id": scan_id, **document}


def _source_revision_values(scan_id: str, p: Provenance) -> dict[str, Any]:
    """The `source_revisions` row of a provenance record (its lineage edges have their own)."""
    return {
        "scan_id": scan_id,
        "source_type": p.source_type.value,
        "repo_id": p.repo_id,
        "namespace": p.namespace,
        "commit": p.commit,
        "revision_requested": p.revision_requested,
        "endpoint": p.endpoint,
        "created_at": p.created_at,
        "last_modified": p.last_modified,
        "gated": p.gated,
        "private": p.private,
        "license": p.license,
        "license_name": p.license_name,
        "license_link": p.license_link,
        "library_name": p.library_name,
        "pipeline_tag": p.pipeline_tag,
        "base_model_relation": p.base_model_relation,
        "hub_security_status": p.hub_security_status,
        "metadata_lists": {
            "tags": list(p.tags),
            "datasets": list(p.datasets),
            "languages": list(p.languages),
            "base_models": list(p.base_models),
            "lineage_roots": list(p.lineage.roots),
            "lineage_truncated": p.lineage.truncated,
            "lineage_cycle": p.lineage.cycle,
        },
    }


def _declared_file_values(scan_id: str, f: DeclaredFile) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "path": f.path,
        "size": f.size,
        "sha256": f.sha256,
        "git_sha1": f.git_sha1,
        "lfs": f.lfs,
    }


def _lineage_edge_values(scan_id: str, e: LineageEdge) -> dict[str, Any]:
    return {
        "scan_id": scan_id,
        "child": e.child,
        "child_commit": e.child_commit,
        "parent": e.parent,
        "parent_commit": e.parent_commit,
        "relation": e.relation.value,
        "depth": e.depth,
        "error": e.error,
        "parent_license": e.parent_license,
    }


def fingerprint_version(report: ScanReport) -> int | None:
    """The version of the weight fingerprint the scan records, or None when it records none."""
    values = _fingerprint_values(report)
    return int(values["version"]) if values is not None else None


def _fingerprint_values(report: ScanReport) -> dict[str, Any] | None:
    """The `weight_fingerprints` row of the fingerprint the scan's lineage carries, if any."""
    lineage = report.verified_lineage
    if lineage is None or lineage.fingerprint is None:
        return None
    from verifier.lineage.fingerprint import FINGERPRINT_VERSION

    assert lineage.hidden_size is not None, "a fingerprint always has its hidden size"
    return {
        "scan_id": report.scan_id,
        "repo_id": lineage.repo_id or report.target,
        "commit": report.source.get("commit"),
        "publisher": lineage.publisher,
        "hidden_size": lineage.hidden_size,
        "version": FINGERPRINT_VERSION,
        "fingerprint": lineage.fingerprint,
    }


def failed_report(
    *, scan_id: str, target: str, started_at: str, finished_at: str, tool_version: str, error: str
) -> ScanReport:
    """The report of a scan that could not finish: denied, so it can never read as allowed.

    The error is kept on the scan row (see `scan_rows`) and as a scan-level `SCAN-FAILED`
    finding, so that reading the scan back shows it.
    """
    return ScanReport(
        scan_id=scan_id,
        target=target,
        started_at=started_at,
        finished_at=finished_at,
        tool_version=tool_version,
        status=ScanStatus.FAILED,
        files=(),
        findings=(Finding(code=SCAN_FAILED_CODE, severity=Severity.HIGH, message=error),),
        verdict=FAIL_CLOSED,
    )


def scan_rows(
    report: ScanReport, *, error: str | None, decided_at: datetime
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The rows of a scan, table by table (scan first: the others refer to it), none empty.

    Raises:
        ValueError: A timestamp of the report lacks its UTC offset.
    """
    scan_id = report.scan_id
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        ("scans", [_scan_values(report, error=error)]),
        ("scan_files", [_file_values(scan_id, result) for result in report.files]),
        ("findings", [_finding_values(scan_id, finding) for finding in report.findings]),
        ("decisions", [decision_values(scan_id, report.verdict, decided_at=decided_at)]),
    ]
    if report.signature is not None:
        rows.append(("signatures", [_signature_values(scan_id, report.signature)]))
    if error is None:
        facts = {
            "scan_id": scan_id,
            "subject": subject_of(report.source),
            "document": facts_document(report.facts),
        }
        rows.append(("scan_facts", [facts]))
    if not report.details.empty:
        details = {"scan_id": scan_id, "document": details_document(report.details)}
        rows.append(("model_details", [details]))
    if report.provenance is not None:
        rows.append(("source_revisions", [_source_revision_values(scan_id, report.provenance)]))
        edges = report.provenance.lineage.edges
        rows.append(("lineage_edges", [_lineage_edge_values(scan_id, e) for e in edges]))
    declared = report.declared_files or ()
    rows.append(("declared_files", [_declared_file_values(scan_id, f) for f in declared]))
    fingerprint = _fingerprint_values(report) if error is None else None
    if fingerprint is not None:
        rows.append(("weight_fingerprints", [fingerprint]))
    return [(table, values) for table, values in rows if values]


def identical_files_found(
    rows: Iterable[tuple[Any, str | None]],
) -> list[tuple[str, str | None, str]]:
    """`(repo_id, commit, sha256)` of the Hub models in `(source, sha256)` rows of
    `scan_tables.IDENTICAL_FILES`, once each, sorted (see `Store.identical_files`)."""
    found: set[tuple[str, str | None, str]] = set()
    for source, sha256 in rows:
        repo_id = source.get("repo_id") if isinstance(source, dict) else None
        if isinstance(repo_id, str) and sha256 is not None:
            commit = source.get("commit")
            found.add((repo_id, commit if isinstance(commit, str) else None, sha256))
    return sorted(found, key=lambda t: (t[0], t[1] or "", t[2]))


MAX_LINEAGE_REFERENCES = 100
"""Recorded models (besides every registered base) a new fingerprint is compared with: the
newest distinct models of the same hidden size whose fingerprint this store's key made. See
docs/lineage.md."""

#: A row of `scan_tables.LINEAGE_CANDIDATES`: scan id, repo id, commit, publisher, registered.
CandidateRow = tuple[str, str, str | None, str | None, Any]


def lineage_references_chosen(
    rows: Iterable[CandidateRow],
    fetch: Callable[[Sequence[str]], Mapping[str, tuple[str, bytes]]],
    *,
    key_id: str,
    older: Iterable[tuple[str, str | None, int, Any]] = (),
    cache: FingerprintCache | None = None,
) -> RecordedReferences:
    """The references to compare with, registered bases first: every registered base, then the
    newest fingerprint of each other model (by repo id and commit) up to
    `MAX_LINEAGE_REFERENCES`, from the rows of `scan_tables.LINEAGE_CANDIDATES` (newest first);
    and, from the rows of `scan_tables.LINEAGE_OLDER`, the models recorded only with
    fingerprints of an older version (registered bases first), which nothing compares.

    Only fingerprints that read back and were made with the key `key_id` are references, and
    only those count against the cap: a row another store's key made (copied in, say) takes
    no slot, and the newest such row of a model does not hide an older genuine one. `fetch`
    reads `scan id -> (repo id, fingerprint bytes)` of the ids asked (`LINEAGE_BLOBS`); it is
    asked in rounds, for no more fingerprints than the places still open, so memory stays
    bounded by the cap and the bases whatever the foreign rows. With `cache` (the store's), a
    fingerprint decoded before is taken from it, not fetched; every rule above still applies.
    """
    from verifier.lineage.attribution import RecordedReferences, Reference

    pending = list(enumerate(rows))
    current = {(row[1].lower(), row[2]) for _, row in pending}
    found: dict[tuple[str, str | None], tuple[int, Reference]] = {}
    others = 0
    while pending:
        room = MAX_LINEAGE_REFERENCES - others
        wanted, asked = [], set()
        for item in pending:
            _, (_, repo_id, commit, _, registered) = item
            key, is_base = (repo_id.lower(), commit), bool(registered)
            held = found.get(key)
            if key in asked or (held is not None and (held[1].registered_base or not is_base)):
                continue  # one row of a model a round; none once a reference holds it
            if not is_base and held is None and room <= 0:
                continue
            asked.add(key)
            room -= not is_base and held is None
            wanted.append(item)
        if not wanted:
            break
        decoded = _decoded([row[0] for _, row in wanted], fetch, cache)
        taken = {id(item) for item in wanted}
        pending = [item for item in pending if id(item) not in taken]
        for order, (scan_id, _, commit, publisher, registered) in wanted:
            if scan_id not in decoded:
                continue  # gone, or unreadable: never compared, never a claim
            repo_id, fingerprint = decoded[scan_id]
            if fingerprint.key_id != key_id:
                continue  # another store's key made it: it compares with nothing here
            key, is_base = (repo_id.lower(), commit), bool(registered)
            held = found.get(key)
            if held is not None and (held[1].registered_base or not is_base):
                continue
            if not is_base and others >= MAX_LINEAGE_REFERENCES:
                continue
            others += (not is_base) - (held is not None)
            reference = Reference(repo_id, commit, publisher, fingerprint, registered_base=is_base)
            found[key] = (order, reference)
    ordered = sorted(found.values(), key=lambda item: (not item[1].registered_base, item[0]))
    return RecordedReferences(
        references=tuple(reference for _, reference in ordered),
        older=_older_only(older, current=current),
    )


def _decoded(
    scan_ids: Sequence[str],
    fetch: Callable[[Sequence[str]], Mapping[str, tuple[str, bytes]]],
    cache: FingerprintCache | None,
) -> dict[str, tuple[str, Fingerprint]]:
    """`scan id -> (repo id, fingerprint)` of the ids asked that read back: from `cache` where
    it holds them, the others fetched and decoded (and kept in it). An unreadable record is
    left out (and not kept: it is read again next time)."""
    from verifier.lineage.fingerprint import Fingerprint, FingerprintError

    found: dict[str, tuple[str, Fingerprint]] = {}
    missing: list[str] = []
    for scan_id in scan_ids:
        held = cache.get(scan_id) if cache is not None else None
        if held is None:
            missing.append(scan_id)
        else:
            found[scan_id] = held
    blobs = fetch(missing) if missing else {}
    for scan_id in missing:
        if scan_id not in blobs:
            continue
        repo_id, blob = blobs[scan_id]
        try:
            fingerprint = Fingerprint.from_bytes(bytes(blob))
        except FingerprintError:
            continue
        found[scan_id] = (repo_id, fingerprint)
        if cache is not None:
            cache.put(scan_id, repo_id, fingerprint)
    return found


def _older_only(
    rows: Iterable[tuple[str, str | None, int, Any]], *, current: set[tuple[str, str | None]]
) -> tuple[OlderReference, ...]:
    """One `OlderReference` per model of `rows` with no fingerprint of the current version
    (`current`): its newest version, registered when any of its rows is."""
    from verifier.lineage.attribution import OlderReference

    models: dict[tuple[str, str | None], OlderReference] = {}
    for repo_id, commit, version, registered in rows:
        key = (repo_id.lower(), commit)
        if key in current:
            continue  # fingerprinted again since: the current one is compared
        held = models.get(key)
        models[key] = OlderReference(
            repo_id,
            commit,
            max(int(version), held.version if held is not None else 0),
            bool(registered) or (held is not None and held.registered_base),
        )
    return tuple(sorted(models.values(), key=lambda m: (not m.registered_base, m.label)))
