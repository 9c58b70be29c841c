"""ORM classes of the append-only audit trail, and their mapping to the frozen model types.

The tables a scan writes are Core `Table`s in `scan_tables` (the scan path never imports the
ORM); the classes here map them for reading. The other tables are declared here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    WaiverOutcome,
)
from verifier.service.model import ApiToken, AuditAction, AuditEvent, JobStatus, Role, ScanJob
from verifier.store.scan_rows import (
    FAIL_CLOSED,
    decision_values,
    format_timestamp,
    parse_timestamp,
)
from verifier.store.scan_tables import (
    BANS,
    DECISIONS,
    DECLARED_FILES,
    FINDINGS,
    LINEAGE_BASES,
    LINEAGE_EDGES,
    LINEAGE_KEYS,
    METADATA,
    MODEL_DETAILS,
    ROW_ID,
    SCAN_FACTS,
    SCAN_FILES,
    SCANS,
    SIGNATURES,
    SOURCE_REVISIONS,
    WEIGHT_FINGERPRINTS,
    UTCDateTime,
)

#: Prefix of the tables of the workers' job queue (procrastinate's schema, migration 0012).
JOB_QUEUE_PREFIX = "procrastinate_"


def is_verifier_object(name: str | None, type_: str, _parents: Any) -> bool:
    """Whether alembic should compare a database object with verifier's metadata.

    The job queue's tables belong to procrastinate, which migrates them, not to `Base`.
    """
    return not (type_ == "table" and name is not None and name.startswith(JOB_QUEUE_PREFIX))


class Base(DeclarativeBase):
    """Declarative base holding verifier's metadata (shared with `scan_tables`)."""

    metadata = METADATA


class ScanRow(Base):
    """One scan: what was scanned, when, by which version, and how it ended."""

    __table__ = SCANS

    id: Mapped[str]
    target: Mapped[str]
    source_type: Mapped[str]
    source: Mapped[dict[str, str]]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    tool_version: Mapped[str]
    status: Mapped[str]
    error: Mapped[str | None]

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

    __table__ = SCAN_FILES

    id: Mapped[int]
    scan_id: Mapped[str]
    path: Mapped[str]
    size: Mapped[int]
    sha256: Mapped[str | None]
    git_sha1: Mapped[str | None]
    format: Mapped[str]
    complete: Mapped[bool]

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

    __table__ = FINDINGS

    id: Mapped[int]
    scan_id: Mapped[str]
    file_path: Mapped[str | None]
    code: Mapped[str]
    severity: Mapped[str]
    message: Mapped[str]
    member: Mapped[str | None]
    byte_offset: Mapped[int | None]
    evidence: Mapped[str | None]

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

    __table__ = DECISIONS

    id: Mapped[int]
    scan_id: Mapped[str]
    decided_at: Mapped[datetime]
    decision: Mapped[str]
    policy_name: Mapped[str]
    policy_digest: Mapped[str]
    mode: Mapped[str]
    reasons: Mapped[list[dict[str, Any]]]
    environment: Mapped[str | None]
    waivers: Mapped[list[dict[str, Any]] | None]

    @classmethod
    def from_model(cls, scan_id: str, verdict: Verdict, *, decided_at: datetime) -> DecisionRow:
        """The row for `verdict`, decided at `decided_at` (the values a scan records)."""
        return cls(**decision_values(scan_id, verdict, decided_at=decided_at))

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


class ScanFactsRow(Base):
    """What a scan established, as the JSON facts document policies decide over.

    Kept so that a policy can decide a recorded scan again without fetching anything, including
    facts (provenance, lineage, signature) that other tables may not keep in full.
    """

    __table__ = SCAN_FACTS

    id: Mapped[int]
    scan_id: Mapped[str]
    subject: Mapped[str | None]
    document: Mapped[dict[str, Any]]


class SignatureRow(Base):
    """The model signature check of one scan: status, method, signer and the manifest diff."""

    __table__ = SIGNATURES

    id: Mapped[int]
    scan_id: Mapped[str]
    status: Mapped[str]
    method: Mapped[str | None]
    signer: Mapped[str | None]
    issuer: Mapped[str | None]
    key_fingerprint: Mapped[str | None]
    certificate_subject: Mapped[str | None]
    key_usage: Mapped[list[str]]
    path: Mapped[str | None]
    bundle_sha256: Mapped[str | None]
    predicate_type: Mapped[str | None]
    digest_algorithm: Mapped[str | None]
    reason: Mapped[str]
    diff: Mapped[dict[str, list[str]]]
    outside: Mapped[list[str]]

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

    __table__ = MODEL_DETAILS

    scan_id: Mapped[str]
    document: Mapped[dict[str, Any]]


class SourceRevisionRow(Base):
    """The pinned revision a Hub scan fetched, with the provenance the Hub gave for it."""

    __table__ = SOURCE_REVISIONS

    id: Mapped[int]
    scan_id: Mapped[str]
    source_type: Mapped[str]
    repo_id: Mapped[str]
    namespace: Mapped[str]
    commit: Mapped[str]
    revision_requested: Mapped[str]
    endpoint: Mapped[str]
    created_at: Mapped[str | None]
    last_modified: Mapped[str | None]
    gated: Mapped[str | None]
    private: Mapped[bool | None]
    license: Mapped[str | None]
    license_name: Mapped[str | None]
    license_link: Mapped[str | None]
    library_name: Mapped[str | None]
    pipeline_tag: Mapped[str | None]
    base_model_relation: Mapped[str | None]
    hub_security_status: Mapped[str | None]
    #: tags, datasets, languages, base_models, lineage roots/truncated/cycle
    metadata_lists: Mapped[dict[str, Any]]

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

    __table__ = DECLARED_FILES

    id: Mapped[int]
    scan_id: Mapped[str]
    path: Mapped[str]
    size: Mapped[int]
    sha256: Mapped[str | None]
    git_sha1: Mapped[str | None]
    lfs: Mapped[bool]

    def to_model(self) -> DeclaredFile:
        """The frozen declared file."""
        return DeclaredFile(
            path=self.path, size=self.size, sha256=self.sha256, git_sha1=self.git_sha1, lfs=self.lfs
        )


class LineageEdgeRow(Base):
    """One declared base-model edge, the parent pinned to its commit at scan time."""

    __table__ = LINEAGE_EDGES

    id: Mapped[int]
    scan_id: Mapped[str]
    child: Mapped[str]
    child_commit: Mapped[str]
    parent: Mapped[str]
    parent_commit: Mapped[str | None]
    relation: Mapped[str]
    depth: Mapped[int]
    error: Mapped[str | None]
    parent_license: Mapped[str | None]

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

    __table__ = WEIGHT_FINGERPRINTS

    scan_id: Mapped[str]
    #: `namespace/name` for a Hub model, the cache repo or the target for a local one.
    repo_id: Mapped[str]
    commit: Mapped[str | None]
    publisher: Mapped[str | None]
    hidden_size: Mapped[int]
    version: Mapped[int]
    fingerprint: Mapped[bytes]


class LineageBaseRow(Base):
    """A fingerprint the organisation registered as a reference base (append-only)."""

    __table__ = LINEAGE_BASES

    id: Mapped[int]
    scan_id: Mapped[str]
    registered_at: Mapped[datetime]


class LineageKeyRow(Base):
    """One row: the secret that chooses every fingerprint's anchor tokens and kept matrices in
    this store (`verifier.lineage.fingerprint.LineageKey`), made on first use, never shown."""

    __table__ = LINEAGE_KEYS

    id: Mapped[int]
    secret: Mapped[bytes]
    created_at: Mapped[datetime]


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

    __table__ = BANS

    id: Mapped[int]
    #: `ban` or `lift`.
    action: Mapped[str]
    #: `model`, `publisher`, `jurisdiction` or `blob` (a lift repeats its ban's).
    kind: Mapped[str]
    value: Mapped[str]
    reason: Mapped[str]
    actor: Mapped[str]
    at: Mapped[datetime]
    lifts: Mapped[int | None]


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
