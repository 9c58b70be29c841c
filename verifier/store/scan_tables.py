"""The tables a scan writes, as SQLAlchemy Core, and the one function that records a scan.

A scan is recorded through these `Table`s with Core inserts: the scan path (`verifier scan`,
the service's jobs) never imports SQLAlchemy's ORM, whose import, declarative classes and
mapper configuration cost more than recording itself. The ORM classes of `tables.py` map these
same `Table`s (`__table__`) for every read; `tables.py` declares the tables nobody writes on
the scan path. Both share `METADATA`, which the migrations are checked against.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from verifier.facts import details_document, facts_document, subject_of
from verifier.model import (
    Decision,
    DeclaredFile,
    FileResult,
    Finding,
    LineageEdge,
    Provenance,
    ScanReport,
    SignatureResult,
    Verdict,
)

#: Constraint names are spelled out so the hand-written migrations and these tables agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Every table of verifier's schema (these and the declarative ones of `tables.py`).
METADATA = MetaData(naming_convention=NAMING_CONVENTION)

#: The verdict of a failed scan, or of one without a decision of its own: denied.
FAIL_CLOSED = Verdict(
    decision=Decision.DENY, policy_name="(none)", policy_digest="", mode="enforce", reasons=()
)

#: Row ids: 64-bit on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


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


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp kept in UTC on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and bind the value in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is needed")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read the value back as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


SCANS = Table(
    "scans",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("target", Text, nullable=False),
    Column("source_type", String(64), nullable=False),
    Column("source", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("tool_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Index("ix_scans_started_at", "started_at"),
)

SCAN_FILES = Table(
    "scan_files",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("git_sha1", String(40)),
    Column("format", String(32), nullable=False),
    Column("complete", Boolean, nullable=False),
    UniqueConstraint("scan_id", "path", name="uq_scan_files_scan_id_path"),
    Index("ix_scan_files_sha256", "sha256"),
)

FINDINGS = Table(
    "findings",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("file_path", Text),
    Column("code", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("member", Text),
    Column("byte_offset", BigInteger),
    Column("evidence", Text),
    Index("ix_findings_code", "code"),
    Index("ix_findings_scan_id", "scan_id"),
)

DECISIONS = Table(
    "decisions",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("policy_name", Text, nullable=False),
    Column("policy_digest", Text, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("environment", String(64)),
    Column("waivers", JSON),
    Index("ix_decisions_scan_id", "scan_id"),
)

SCAN_FACTS = Table(
    "scan_facts",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("subject", Text),
    Column("document", JSON, nullable=False),
    UniqueConstraint("scan_id", name="uq_scan_facts_scan_id"),
    Index("ix_scan_facts_subject", "subject"),
)

SIGNATURES = Table(
    "signatures",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(16)),
    Column("signer", Text),
    Column("issuer", Text),
    Column("key_fingerprint", String(128)),
    Column("certificate_subject", Text),
    Column("key_usage", JSON, nullable=False),
    Column("path", Text),
    Column("bundle_sha256", String(64)),
    Column("predicate_type", Text),
    Column("digest_algorithm", String(64)),
    Column("reason", Text, nullable=False),
    Column("diff", JSON, nullable=False),
    Column("outside", JSON, nullable=False),
    Index("ix_signatures_scan_id", "scan_id"),
    Index("ix_signatures_signer", "signer"),
)

MODEL_DETAILS = Table(
    "model_details",
    METADATA,
    Column("scan_id", String(32), ForeignKey("scans.id"), primary_key=True),
    Column("document", JSON, nullable=False),
)

SOURCE_REVISIONS = Table(
    "source_revisions",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("repo_id", Text, nullable=False),
    Column("namespace", Text, nullable=False),
    Column("commit", String(64), nullable=False),
    Column("revision_requested", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("created_at", String(64)),
    Column("last_modified", String(64)),
    Column("gated", String(32)),
    Column("private", Boolean),
    Column("license", Text),
    Column("license_name", Text),
    Column("license_link", Text),
    Column("library_name", Text),
    Column("pipeline_tag", Text),
    Column("base_model_relation", Text),
    Column("hub_security_status", Text),
    #: tags, datasets, languages, base_models, lineage roots/truncated/cycle
    Column("metadata_lists", JSON, nullable=False),
    UniqueConstraint("scan_id", name="uq_source_revisions_scan_id"),
    Index("ix_source_revisions_repo_id_commit", "repo_id", "commit"),
)

DECLARED_FILES = Table(
    "declared_files",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("git_sha1", String(40)),
    Column("lfs", Boolean, nullable=False),
    UniqueConstraint("scan_id", "path", name="uq_declared_files_scan_id_path"),
    Index("ix_declared_files_sha256", "sha256"),
)

LINEAGE_EDGES = Table(
    "lineage_edges",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("child", Text, nullable=False),
    Column("child_commit", String(64), nullable=False),
    Column("parent", Text, nullable=False),
    Column("parent_commit", String(64)),
    Column("relation", String(32), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("error", Text),
    Column("parent_license", Text),
    Index("ix_lineage_edges_parent", "parent"),
    Index("ix_lineage_edges_scan_id", "scan_id"),
)

WEIGHT_FINGERPRINTS = Table(
    "weight_fingerprints",
    METADATA,
    Column("scan_id", String(32), ForeignKey("scans.id"), primary_key=True),
    #: `namespace/name` for a Hub model, the cache repo or the target for a local one.
    Column("repo_id", Text, nullable=False),
    Column("commit", String(64)),
    Column("publisher", Text),
    Column("hidden_size", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Index("ix_weight_fingerprints_hidden_size", "hidden_size"),
)

LINEAGE_KEYS = Table(
    "lineage_keys",
    METADATA,
    #: One row (id 1): the store's secret that chooses fingerprints' anchors and matrices.
    #: Here, not in `tables.py`: a scan reads it before fingerprinting, without the ORM.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

BANS = Table(
    "bans",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    #: `ban` or `lift` (a lift names its ban in `lifts`): append-only, never updated.
    Column("action", String(8), nullable=False),
    #: `model`, `publisher`, `jurisdiction` or `blob` (a lift repeats its ban's).
    Column("kind", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("lifts", ROW_ID, ForeignKey("bans.id")),
    Index("ix_bans_lifts", "lifts"),
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
    return {
        "scan_id": scan_id,
        "status": result.status.value,
        "method": result.method.value if result.method else None,
        "signer": result.signer,
        "issuer": result.issuer,
        "key_fingerprint": result.key_fingerprint,
        "certificate_subject": result.certificate_subject,
        "key_usage": list(result.key_usage),
        "path": result.path,
        "bundle_sha256": result.bundle_sha256,
        "predicate_type": result.predicate_type,
        "digest_algorithm": result.digest_algorithm,
        "reason": result.reason,
        "diff": {
            "extra": list(result.diff.extra),
            "missing": list(result.diff.missing),
            "changed": list(result.diff.changed),
        },
        "outside": list(result.outside),
    }


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


def insert_scan(
    connection: Connection, report: ScanReport, *, error: str | None, decided_at: datetime
) -> None:
    """Insert the rows of a scan in `connection`'s transaction (the caller commits).

    The one way a scan is recorded: `Store.record_scan`, `Store.record_failed_scan` and the
    service's job recorder all come here. The scan row goes first, as the others refer to it.
    """
    scan_id = report.scan_id
    rows: list[tuple[Table, list[dict[str, Any]]]] = [
        (SCANS, [_scan_values(report, error=error)]),
        (SCAN_FILES, [_file_values(scan_id, result) for result in report.files]),
        (FINDINGS, [_finding_values(scan_id, finding) for finding in report.findings]),
        (DECISIONS, [decision_values(scan_id, report.verdict, decided_at=decided_at)]),
    ]
    if report.signature is not None:
        rows.append((SIGNATURES, [_signature_values(scan_id, report.signature)]))
    if error is None:
        facts = {
            "scan_id": scan_id,
            "subject": subject_of(report.source),
            "document": facts_document(report.facts),
        }
        rows.append((SCAN_FACTS, [facts]))
    if not report.details.empty:
        details = {"scan_id": scan_id, "document": details_document(report.details)}
        rows.append((MODEL_DETAILS, [details]))
    if report.provenance is not None:
        rows.append((SOURCE_REVISIONS, [_source_revision_values(scan_id, report.provenance)]))
        edges = report.provenance.lineage.edges
        rows.append((LINEAGE_EDGES, [_lineage_edge_values(scan_id, e) for e in edges]))
    declared = report.declared_files or ()
    rows.append((DECLARED_FILES, [_declared_file_values(scan_id, f) for f in declared]))
    fingerprint = _fingerprint_values(report) if error is None else None
    if fingerprint is not None:
        rows.append((WEIGHT_FINGERPRINTS, [fingerprint]))
    for table, values in rows:
        if values:
            connection.execute(insert(table), values)
