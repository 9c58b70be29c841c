"""SQLAlchemy tables of the append-only audit trail, and their mapping to the frozen model types."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from verifier.model import (
    Approval,
    Decision,
    DeclaredFile,
    FileFormat,
    FileResult,
    Finding,
    Lineage,
    LineageEdge,
    LineageRelation,
    Provenance,
    RuleOutcome,
    ScanReport,
    ScanStatus,
    ScanSummary,
    Severity,
    SignatureDiff,
    SignatureMethod,
    SignatureResult,
    SignatureStatus,
    SourceType,
    Verdict,
    VerifiedLineage,
    WaiverOutcome,
)
from verifier.service.model import ApiToken, AuditAction, AuditEvent, JobStatus, Role, ScanJob

#: Constraint names are spelled out so the hand-written migrations and these tables agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

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


#: Prefix of the tables of the workers' job queue (procrastinate's schema, migration 0012).
JOB_QUEUE_PREFIX = "procrastinate_"


def is_verifier_object(name: str | None, type_: str, _parents: Any) -> bool:
    """Whether alembic should compare a database object with verifier's metadata.

    The job queue's tables belong to procrastinate, which migrates them, not to `Base`.
    """
    return not (type_ == "table" and name is not None and name.startswith(JOB_QUEUE_PREFIX))


class Base(DeclarativeBase):
    """Declarative base holding verifier's metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ScanRow(Base):
    """One scan: what was scanned, when, by which version, and how it ended."""

    __tablename__ = "scans"
    __table_args__ = (Index("ix_scans_started_at", "started_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(Text)
    source_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[dict[str, str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    tool_version: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def from_model(cls, report: ScanReport, *, error: str | None = None) -> ScanRow:
        """The row for `report`; its type of source is `report.source["type"]`, if any.

        Raises:
            ValueError: A timestamp is not ISO-8601 with a UTC offset.
        """
        return cls(
            id=report.scan_id,
            target=report.target,
            source_type=report.source.get("type", "unknown"),
            source=dict(report.source),
            started_at=parse_timestamp(report.started_at),
            finished_at=parse_timestamp(report.finished_at),
            tool_version=report.tool_version,
            status=report.status.value,
            error=error,
        )

    def to_model(
        self,
        files: tuple[FileResult, ...],
        findings: tuple[Finding, ...],
        verdict: Verdict,
        signature: SignatureResult | None = None,
    ) -> ScanReport:
        """The frozen report, given what was recorded with this scan."""
        return ScanReport(
            scan_id=self.id,
            target=self.target,
            started_at=format_timestamp(self.started_at),
            finished_at=format_timestamp(self.finished_at),
            tool_version=self.tool_version,
            status=ScanStatus(self.status),
            files=files,
            findings=findings,
            verdict=verdict,
            source=dict(self.source),
            signature=signature,
        )

    def to_summary(self, decision: str | None, *, files: int, findings: int) -> ScanSummary:
        """The history line for this scan, given its current decision and row counts."""
        return ScanSummary(
            scan_id=self.id,
            target=self.target,
            started_at=format_timestamp(self.started_at),
            status=ScanStatus(self.status),
            # This API never writes a scan without a decision; never read one as allowed.
            decision=Decision(decision) if decision is not None else FAIL_CLOSED.decision,
            file_count=files,
            finding_count=findings,
        )


class ScanFileRow(Base):
    """One file a scan read, with its digests and detected format."""

    __tablename__ = "scan_files"
    __table_args__ = (
        UniqueConstraint("scan_id", "path", name="uq_scan_files_scan_id_path"),
        Index("ix_scan_files_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    git_sha1: Mapped[str | None] = mapped_column(String(40))
    format: Mapped[str] = mapped_column(String(32))
    complete: Mapped[bool] = mapped_column(Boolean)

    @classmethod
    def from_model(cls, scan_id: str, result: FileResult) -> ScanFileRow:
        """The row for `result` (its findings are stored as finding rows)."""
        return cls(
            scan_id=scan_id,
            path=result.path,
            size=result.size,
            sha256=result.sha256,
            git_sha1=result.git_sha1,
            format=result.format.value,
            complete=result.complete,
        )

    def to_model(self, findings: tuple[Finding, ...]) -> FileResult:
        """The frozen result, given the findings recorded against this file."""
        return FileResult(
            path=self.path,
            size=self.size,
            sha256=self.sha256,
            git_sha1=self.git_sha1,
            format=FileFormat(self.format),
            findings=findings,
            complete=self.complete,
        )


class FindingRow(Base):
    """One finding, against a file (`file_path`) or the scan as a whole (no path)."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_scan_id", "scan_id"),
        Index("ix_findings_code", "code"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    file_path: Mapped[str | None] = mapped_column(Text)
    code: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    member: Mapped[str | None] = mapped_column(Text)
    byte_offset: Mapped[int | None] = mapped_column(BigInteger)
    evidence: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def from_model(cls, scan_id: str, finding: Finding) -> FindingRow:
        """The row for `finding`."""
        return cls(
            scan_id=scan_id,
            file_path=finding.file,
            code=finding.code,
            severity=finding.severity.value,
            message=finding.message,
            member=finding.member,
            byte_offset=finding.offset,
            evidence=finding.evidence,
        )

    def to_model(self) -> Finding:
        """The frozen finding."""
        return Finding(
            code=self.code,
            severity=Severity(self.severity),
            message=self.message,
            file=self.file_path,
            member=self.member,
            offset=self.byte_offset,
            evidence=self.evidence,
        )


class DecisionRow(Base):
    """One policy decision about a scan; the latest by id is the current one."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_scan_id", "scan_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decision: Mapped[str] = mapped_column(String(16))
    policy_name: Mapped[str] = mapped_column(Text)
    policy_digest: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(32))
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    environment: Mapped[str | None] = mapped_column(String(64))
    waivers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    @classmethod
    def from_model(cls, scan_id: str, verdict: Verdict, *, decided_at: datetime) -> DecisionRow:
        """The row for `verdict`, decided at `decided_at`."""
        return cls(
            scan_id=scan_id,
            decided_at=decided_at,
            decision=verdict.decision.value,
            policy_name=verdict.policy_name,
            policy_digest=verdict.policy_digest,
            mode=verdict.mode,
            reasons=[
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
            environment=verdict.environment,
            waivers=[
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
        )

    def to_model(self) -> Verdict:
        """The frozen verdict."""
        return Verdict(
            decision=Decision(self.decision),
            policy_name=self.policy_name,
            policy_digest=self.policy_digest,
            mode=self.mode,
            reasons=tuple(
                RuleOutcome(
                    rule_id=str(reason["rule_id"]),
                    effect=str(reason["effect"]),
                    severity=Severity(reason["severity"]),
                    message=str(reason["message"]),
                    evidence=tuple(str(item) for item in reason["evidence"]),
                    waived_by=reason.get("waived_by"),
                )
                for reason in self.reasons
            ),
            environment=self.environment,
            waivers=tuple(
                WaiverOutcome(
                    waiver_id=str(w["id"]),
                    rule_id=str(w["rule"]),
                    subject=str(w["subject"]),
                    status=str(w["status"]),
                    expires=str(w["expires"]),
                    approved_by=str(w["approved_by"]),
                    ticket=str(w["ticket"]),
                )
                for w in self.waivers or ()
            ),
        )


def subject_of(source: dict[str, str]) -> str | None:
    """`hf://repo_id@commit` for a source that names both, else None."""
    repo_id, commit = source.get("repo_id"), source.get("commit")
    return f"hf://{repo_id}@{commit}" if repo_id and commit else None


class ScanFactsRow(Base):
    """What a scan established, as the JSON facts document policies decide over.

    Kept so that a policy can decide a recorded scan again without fetching anything, including
    facts (provenance, lineage, signature) that other tables may not keep in full.
    """

    __tablename__ = "scan_facts"
    __table_args__ = (
        UniqueConstraint("scan_id", name="uq_scan_facts_scan_id"),
        Index("ix_scan_facts_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    subject: Mapped[str | None] = mapped_column(Text)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class SignatureRow(Base):
    """The model signature check of one scan: status, method, signer and the manifest diff."""

    __tablename__ = "signatures"
    __table_args__ = (
        Index("ix_signatures_scan_id", "scan_id"),
        Index("ix_signatures_signer", "signer"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    status: Mapped[str] = mapped_column(String(16))
    method: Mapped[str | None] = mapped_column(String(16))
    signer: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str | None] = mapped_column(Text)
    key_fingerprint: Mapped[str | None] = mapped_column(String(128))
    certificate_subject: Mapped[str | None] = mapped_column(Text)
    key_usage: Mapped[list[str]] = mapped_column(JSON)
    path: Mapped[str | None] = mapped_column(Text)
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))
    predicate_type: Mapped[str | None] = mapped_column(Text)
    digest_algorithm: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    diff: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    outside: Mapped[list[str]] = mapped_column(JSON)

    @classmethod
    def from_model(cls, scan_id: str, result: SignatureResult) -> SignatureRow:
        """The row for `result`."""
        return cls(
            scan_id=scan_id,
            status=result.status.value,
            method=result.method.value if result.method else None,
            signer=result.signer,
            issuer=result.issuer,
            key_fingerprint=result.key_fingerprint,
            certificate_subject=result.certificate_subject,
            key_usage=list(result.key_usage),
            path=result.path,
            bundle_sha256=result.bundle_sha256,
            predicate_type=result.predicate_type,
            digest_algorithm=result.digest_algorithm,
            reason=result.reason,
            diff={
                "extra": list(result.diff.extra),
                "missing": list(result.diff.missing),
                "changed": list(result.diff.changed),
            },
            outside=list(result.outside),
        )

    def to_model(self) -> SignatureResult:
        """The frozen signature result."""
        return SignatureResult(
            status=SignatureStatus(self.status),
            reason=self.reason,
            path=self.path,
            method=SignatureMethod(self.method) if self.method else None,
            signer=self.signer,
            issuer=self.issuer,
            key_fingerprint=self.key_fingerprint,
            certificate_subject=self.certificate_subject,
            key_usage=tuple(str(u) for u in self.key_usage),
            predicate_type=self.predicate_type,
            digest_algorithm=self.digest_algorithm,
            diff=SignatureDiff(
                extra=tuple(str(p) for p in self.diff.get("extra", [])),
                missing=tuple(str(p) for p in self.diff.get("missing", [])),
                changed=tuple(str(p) for p in self.diff.get("changed", [])),
            ),
            outside=tuple(str(p) for p in self.outside),
            bundle_sha256=self.bundle_sha256,
        )


class ApprovalRow(Base):
    """One organisation countersignature written by `verifier approve` (append-only)."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_scan_id", "scan_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    output: Mapped[str] = mapped_column(Text)
    files: Mapped[int] = mapped_column(Integer)

    @classmethod
    def from_model(cls, scan_id: str, approval: Approval) -> ApprovalRow:
        """The row for `approval`."""
        return cls(
            scan_id=scan_id,
            approved_at=datetime.fromisoformat(approval.approved_at),
            key_fingerprint=approval.key_fingerprint,
            bundle_sha256=approval.bundle_sha256,
            output=approval.output,
            files=approval.files,
        )

    def to_model(self) -> Approval:
        """The frozen approval."""
        return Approval(
            approved_at=self.approved_at.isoformat(),
            key_fingerprint=self.key_fingerprint,
            bundle_sha256=self.bundle_sha256,
            output=self.output,
            files=self.files,
        )


class ModelDetailsRow(Base):
    """Model facts a scan read in its one pass (config, safetensors headers, model card)."""

    __tablename__ = "model_details"

    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"), primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


class SourceRevisionRow(Base):
    """The pinned revision a Hub scan fetched, with the provenance the Hub gave for it."""

    __tablename__ = "source_revisions"
    __table_args__ = (
        UniqueConstraint("scan_id", name="uq_source_revisions_scan_id"),
        Index("ix_source_revisions_repo_id_commit", "repo_id", "commit"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    source_type: Mapped[str] = mapped_column(String(32))
    repo_id: Mapped[str] = mapped_column(Text)
    namespace: Mapped[str] = mapped_column(Text)
    commit: Mapped[str] = mapped_column(String(64))
    revision_requested: Mapped[str] = mapped_column(Text)
    endpoint: Mapped[str] = mapped_column(Text)
    created_at: Mapped[str | None] = mapped_column(String(64))
    last_modified: Mapped[str | None] = mapped_column(String(64))
    gated: Mapped[str | None] = mapped_column(String(32))
    private: Mapped[bool | None] = mapped_column(Boolean)
    license: Mapped[str | None] = mapped_column(Text)
    license_name: Mapped[str | None] = mapped_column(Text)
    license_link: Mapped[str | None] = mapped_column(Text)
    library_name: Mapped[str | None] = mapped_column(Text)
    pipeline_tag: Mapped[str | None] = mapped_column(Text)
    base_model_relation: Mapped[str | None] = mapped_column(Text)
    hub_security_status: Mapped[str | None] = mapped_column(Text)
    #: tags, datasets, languages, base_models, lineage roots/truncated/cycle
    metadata_lists: Mapped[dict[str, Any]] = mapped_column(JSON)

    @classmethod
    def from_model(cls, scan_id: str, p: Provenance) -> SourceRevisionRow:
        """The row for a provenance record (its lineage edges are rows of their own)."""
        return cls(
            scan_id=scan_id,
            source_type=p.source_type.value,
            repo_id=p.repo_id,
            namespace=p.namespace,
            commit=p.commit,
            revision_requested=p.revision_requested,
            endpoint=p.endpoint,
            created_at=p.created_at,
            last_modified=p.last_modified,
            gated=p.gated,
            private=p.private,
            license=p.license,
            license_name=p.license_name,
            license_link=p.license_link,
            library_name=p.library_name,
            pipeline_tag=p.pipeline_tag,
            base_model_relation=p.base_model_relation,
            hub_security_status=p.hub_security_status,
            metadata_lists={
                "tags": list(p.tags),
                "datasets": list(p.datasets),
                "languages": list(p.languages),
                "base_models": list(p.base_models),
                "lineage_roots": list(p.lineage.roots),
                "lineage_truncated": p.lineage.truncated,
                "lineage_cycle": p.lineage.cycle,
            },
        )

    def to_model(self, edges: tuple[LineageEdge, ...]) -> Provenance:
        """The frozen provenance, given the lineage edges recorded with it."""
        lists = self.metadata_lists

        def strings(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in lists.get(key, ()))

        return Provenance(
            source_type=SourceType(self.source_type),
            repo_id=self.repo_id,
            namespace=self.namespace,
            commit=self.commit,
            revision_requested=self.revision_requested,
            endpoint=self.endpoint,
            created_at=self.created_at,
            last_modified=self.last_modified,
            gated=self.gated,
            private=self.private,
            license=self.license,
            license_name=self.license_name,
            license_link=self.license_link,
            tags=strings("tags"),
            datasets=strings("datasets"),
            languages=strings("languages"),
            library_name=self.library_name,
            pipeline_tag=self.pipeline_tag,
            base_models=strings("base_models"),
            base_model_relation=self.base_model_relation,
            hub_security_status=self.hub_security_status,
            lineage=Lineage(
                edges=edges,
                roots=strings("lineage_roots"),
                truncated=bool(lists.get("lineage_truncated")),
                cycle=bool(lists.get("lineage_cycle")),
            ),
        )


class DeclaredFileRow(Base):
    """A file the source declared for the pinned commit, before any byte was downloaded."""

    __tablename__ = "declared_files"
    __table_args__ = (
        UniqueConstraint("scan_id", "path", name="uq_declared_files_scan_id_path"),
        Index("ix_declared_files_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    git_sha1: Mapped[str | None] = mapped_column(String(40))
    lfs: Mapped[bool] = mapped_column(Boolean)

    @classmethod
    def from_model(cls, scan_id: str, f: DeclaredFile) -> DeclaredFileRow:
        """The row for a declared file."""
        return cls(
            scan_id=scan_id,
            path=f.path,
            size=f.size,
            sha256=f.sha256,
            git_sha1=f.git_sha1,
            lfs=f.lfs,
        )

    def to_model(self) -> DeclaredFile:
        """The frozen declared file."""
        return DeclaredFile(
            path=self.path, size=self.size, sha256=self.sha256, git_sha1=self.git_sha1, lfs=self.lfs
        )


class LineageEdgeRow(Base):
    """One declared base-model edge, the parent pinned to its commit at scan time."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        Index("ix_lineage_edges_scan_id", "scan_id"),
        Index("ix_lineage_edges_parent", "parent"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    child: Mapped[str] = mapped_column(Text)
    child_commit: Mapped[str] = mapped_column(String(64))
    parent: Mapped[str] = mapped_column(Text)
    parent_commit: Mapped[str | None] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))
    depth: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    parent_license: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def from_model(cls, scan_id: str, e: LineageEdge) -> LineageEdgeRow:
        """The row for a lineage edge."""
        return cls(
            scan_id=scan_id,
            child=e.child,
            child_commit=e.child_commit,
            parent=e.parent,
            parent_commit=e.parent_commit,
            relation=e.relation.value,
            depth=e.depth,
            error=e.error,
            parent_license=e.parent_license,
        )

    def to_model(self) -> LineageEdge:
        """The frozen lineage edge."""
        return LineageEdge(
            child=self.child,
            child_commit=self.child_commit,
            parent=self.parent,
            parent_commit=self.parent_commit,
            relation=LineageRelation(self.relation),
            depth=self.depth,
            error=self.error,
            parent_license=self.parent_license,
        )


class WeightFingerprintRow(Base):
    """The weight fingerprint a scan computed (`verifier.lineage`), for later attributions."""

    __tablename__ = "weight_fingerprints"
    __table_args__ = (Index("ix_weight_fingerprints_hidden_size", "hidden_size"),)

    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"), primary_key=True)
    #: `namespace/name` for a Hub model, the cache repo or the target for a local one.
    repo_id: Mapped[str] = mapped_column(Text)
    commit: Mapped[str | None] = mapped_column(String(64))
    publisher: Mapped[str | None] = mapped_column(Text)
    hidden_size: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[bytes] = mapped_column(LargeBinary)

    @classmethod
    def from_model(cls, report: ScanReport, lineage: VerifiedLineage) -> WeightFingerprintRow:
        """The row for the fingerprint `lineage` carries (which must have one)."""
        from verifier.lineage.fingerprint import FINGERPRINT_VERSION

        assert lineage.fingerprint is not None and lineage.hidden_size is not None
        source = report.source
        return cls(
            scan_id=report.scan_id,
            repo_id=lineage.repo_id or report.target,
            commit=source.get("commit"),
            publisher=lineage.publisher,
            hidden_size=lineage.hidden_size,
            version=FINGERPRINT_VERSION,
            fingerprint=lineage.fingerprint,
        )


class LineageBaseRow(Base):
    """A fingerprint the organisation registered as a reference base (append-only)."""

    __tablename__ = "lineage_bases"
    __table_args__ = (Index("ix_lineage_bases_scan_id", "scan_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("weight_fingerprints.scan_id"))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiTokenRow(Base):
    """An API token of the service: its name, role and the SHA-256 of its secret."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        UniqueConstraint("name", name="uq_api_tokens_name"),
        UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(Text)

    def to_model(self) -> ApiToken:
        """The frozen token (without its digest: nothing outside the store needs it)."""
        return ApiToken(
            name=self.name,
            role=Role(self.role),
            created_at=format_timestamp(self.created_at),
            created_by=self.created_by,
            revoked_at=format_timestamp(self.revoked_at) if self.revoked_at else None,
            revoked_by=self.revoked_by,
        )


class AuditEventRow(Base):
    """One state change made through the service or its commands (append-only)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

    def to_model(self) -> AuditEvent:
        """The frozen event."""
        return AuditEvent(
            event_id=self.id,
            at=format_timestamp(self.at),
            actor=self.actor,
            action=AuditAction(self.action),
            subject=self.subject,
            detail=dict(self.detail),
        )


class ScanJobRow(Base):
    """A scan asked of the service; `scan_id` names the recorded scan once it is done."""

    __tablename__ = "scan_jobs"
    __table_args__ = (
        Index("ix_scan_jobs_target", "target"),
        Index("ix_scan_jobs_status", "status"),
        # One open job per request: two identical requests at once cannot both queue one.
        Index("uq_scan_jobs_open_key", "open_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    target: Mapped[str] = mapped_column(Text)
    policy_name: Mapped[str] = mapped_column(Text)
    policy_digest: Mapped[str] = mapped_column(Text)
    environment: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    scan_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("scans.id"))
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: `ScanJob.request_key` while the job is queued or running, null once it is finished
    #: (unique: null keys never collide, so finished jobs do not count).
    open_key: Mapped[str | None] = mapped_column(String(64))

    @classmethod
    def from_model(cls, job: ScanJob) -> ScanJobRow:
        """The row for `job`.

        Raises:
            ValueError: A timestamp is not ISO-8601 with a UTC offset.
        """
        return cls(
            id=job.job_id,
            target=job.target,
            policy_name=job.policy_name,
            policy_digest=job.policy_digest,
            environment=job.environment,
            status=job.status.value,
            scan_id=job.scan_id,
            error=job.error,
            requested_by=job.requested_by,
            created_at=parse_timestamp(job.created_at),
            updated_at=parse_timestamp(job.updated_at),
            open_key=job.request_key if job.open else None,
        )

    def to_model(self) -> ScanJob:
        """The frozen job."""
        return ScanJob(
            job_id=self.id,
            target=self.target,
            policy_name=self.policy_name,
            policy_digest=self.policy_digest,
            environment=self.environment,
            status=JobStatus(self.status),
            requested_by=self.requested_by,
            created_at=format_timestamp(self.created_at),
            updated_at=format_timestamp(self.updated_at),
            scan_id=self.scan_id,
            error=self.error,
        )


class BanRow(Base):
    """A ban, or the lift of one (`lifts` names the ban): append-only, never updated."""

    __tablename__ = "bans"
    __table_args__ = (Index("ix_bans_lifts", "lifts"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    #: `ban` or `lift`.
    action: Mapped[str] = mapped_column(String(8))
    #: `model`, `publisher`, `jurisdiction` or `blob` (a lift repeats its ban's).
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifts: Mapped[int | None] = mapped_column(ROW_ID, ForeignKey("bans.id"))


class BanReachRow(Base):
    """A recorded model a ban reached when it was made or lifted (append-only).

    Lets the gate tell that a decision made before the ban (or its lift) may not hold,
    without computing the blast radius again.
    """

    __tablename__ = "ban_reach"
    __table_args__ = (Index("ix_ban_reach_subject", "subject"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    ban: Mapped[int] = mapped_column(ROW_ID, ForeignKey("bans.id"))
    #: The model: `hf://ns/name@commit`, else the scanned target.
    subject: Mapped[str] = mapped_column(Text)


class DecisionChangeRow(Base):
    """A recorded model's decision changed, and why (append-only)."""

    __tablename__ = "decision_changes"
    __table_args__ = (
        Index("ix_decision_changes_scan_id", "scan_id"),
        Index("ix_decision_changes_at", "at"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    scan_id: Mapped[str] = mapped_column(String(32), ForeignKey("scans.id"))
    #: The model: `hf://ns/name@commit`, else the scanned target.
    subject: Mapped[str] = mapped_column(Text)
    policy_name: Mapped[str] = mapped_column(Text)
    policy_digest: Mapped[str] = mapped_column(Text)
    environment: Mapped[str | None] = mapped_column(String(64))
    #: The decision before (None: none was recorded under this policy and environment).
    previous: Mapped[str | None] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))
    #: See `verifier.redecide.Cause`.
    cause: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(Text)


class WatchRow(Base):
    """A watched reference of a Hub model (`hf://repo_id@ref`); never deleted."""

    __tablename__ = "watches"
    __table_args__ = (Index("ix_watches_repo_id", "repo_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    repo_id: Mapped[str] = mapped_column(Text)
    ref: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WatchUpdateRow(Base):
    """A commit of a watched reference, and the scan job verifying it (append-only)."""

    __tablename__ = "watch_updates"
    __table_args__ = (Index("ix_watch_updates_watch_id", "watch_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(ROW_ID, ForeignKey("watches.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The new commit, or None when the watch was added on a branch or tag (the scan resolves it).
    commit: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("scan_jobs.id"))
    #: `added` (the watch was made), `webhook` (the Hub reported a new commit) or `poll`.
    source: Mapped[str] = mapped_column(String(16))


class WaiverRow(Base):
    """A waiver recorded through the service (`POST /api/v1/waivers`); never deleted.

    The service adds these to its policy's own waivers, as `--waivers` files are added.
    """

    __tablename__ = "waivers"
    __table_args__ = (UniqueConstraint("waiver_id", name="uq_waivers_waiver_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    waiver_id: Mapped[str] = mapped_column(String(128))
    rule: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    expires: Mapped[date] = mapped_column(Date)
    approved_by: Mapped[str] = mapped_column(Text)
    ticket: Mapped[str] = mapped_column(Text)
    justification: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(Text)


class WaiverRevocationRow(Base):
    """A recorded waiver ended before its expiry (`POST /api/v1/waivers/{id}/revoke`); never
    deleted. The waiver's own row stays as it was: both are the record."""

    __tablename__ = "waiver_revocations"
    __table_args__ = (UniqueConstraint("waiver_id", name="uq_waiver_revocations_waiver_id"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    waiver_id: Mapped[str] = mapped_column(String(128), ForeignKey("waivers.waiver_id"))
    reason: Mapped[str] = mapped_column(Text)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str] = mapped_column(Text)


class NotificationRow(Base):
    """An event owed to a notification URL, and how its delivery went (the delivery log)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("url", "event_key", name="uq_notifications_url_event_key"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    #: See `verifier.service.notify.NotificationEvent`.
    event: Mapped[str] = mapped_column(String(32))
    #: What the event is about (`change:12`, `findings:<scan id>`, `waiver:<id>:<expires>`):
    #: one notification per URL and key.
    event_key: Mapped[str] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: See `verifier.service.notify.DeliveryStatus`.
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    #: When a pending delivery is tried next (None once delivered or given up).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationSubscriptionRow(Base):
    """Where notifications go, recorded through the API or `verifier notify add` (removed
    when unsubscribed: the audit log keeps who made and removed it)."""

    __tablename__ = "notification_subscriptions"
    __table_args__ = (UniqueConstraint("url", name="uq_notification_subscriptions_url"),)

    id: Mapped[int] = mapped_column(ROW_ID, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text)
    #: Kept as given: an HMAC key must be at hand to sign with. Never returned by the API.
    secret: Mapped[str] = mapped_column(Text)
    #: The `NotificationEvent` values it is told of.
    events: Mapped[list[str]] = mapped_column(JSON)
    waiver_days: Mapped[int] = mapped_column(Integer)
    environment: Mapped[str | None] = mapped_column(String(128))
    publisher: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(Text)


class NotificationCursorRow(Base):
    """How far a notification URL has been told of a source of events (ids of its rows)."""

    __tablename__ = "notification_cursors"

    url: Mapped[str] = mapped_column(Text, primary_key=True)
    #: `change` (decision_changes.id) or `finding` (findings.id).
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)


#: The tables the gate's answers (and the tokens it checks) are read from: every insert,
#: update or delete of one of them moves the change counter, by a trigger (migrations 0017
#: and 0019).
GATE_TABLES = (
    "scans",
    "scan_facts",
    "decisions",
    "signatures",
    "approvals",
    "bans",
    "ban_reach",
    "waivers",
    "waiver_revocations",
    "api_tokens",
    # Migration 0019: a server that does not decide with the policy in force answers unknown.
    "policies_in_force",
)


class ChangeCounterRow(Base):
    """One row: a number that only grows, moved in the same transaction as every change of
    the `GATE_TABLES` (by database triggers, so no writer can forget it). A server that keeps
    answers in memory keeps them only while this number is the one it read before them."""

    __tablename__ = "change_counter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger)


class PolicyInForceRow(Base):
    """One row (id 1): the policy files every server sharing the database decides with, set by
    the server that started, or reloaded changed files, last (migration 0019). A server whose
    own files have another digest reads them again, and answers `unknown` until they match."""

    __tablename__ = "policies_in_force"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: The policy's name, as its file says.
    name: Mapped[str] = mapped_column(String(128))
    #: `PolicySet.files_digest`: the policy file, its registry and waivers files (no recorded
    #: waiver: every server reads those from the database).
    files_digest: Mapped[str] = mapped_column(String(80))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by: Mapped[str] = mapped_column(Text)
