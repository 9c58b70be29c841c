"""The service's records in the Store's database: tokens, the audit log, scan jobs, decisions."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Subquery, case, func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from verifier.errors import NotFoundError, StoreError, UsageError
from verifier.model import Decision, ScanReport, ScanStatus, Verdict
from verifier.service.model import (
    RESCAN_ACTOR_PREFIX,
    ApiToken,
    AuditAction,
    AuditEvent,
    JobStatus,
    Role,
    ScanJob,
    request_key,
)
from verifier.store.database import Store
from verifier.store.scan_rows import check_file_findings, fingerprint_version, format_timestamp
from verifier.store.scan_tables import (
    SCAN_FACTS,
    WEIGHT_FINGERPRINTS,
    insert_scan,
    registered_base,
)
from verifier.store.tables import (
    ApiTokenRow,
    AuditEventRow,
    DecisionChangeRow,
    DecisionRow,
    FindingRow,
    ScanFactsRow,
    ScanJobRow,
    ScanRow,
    SignatureRow,
)

#: Times a job is recorded again when an identical request's open job finished meanwhile.
_ADD_JOB_ATTEMPTS = 3
#: Most audit events one read returns.
MAX_AUDIT_EVENTS = 1_000
#: Most inventory entries one read returns.
MAX_INVENTORY = 1_000


@dataclass(frozen=True)
class NewestScan:
    """The newest recorded scan of a model, and the verifier version that made it."""

    scan_id: str
    tool_version: str
    #: Whether the scan completed (`scanner_versions` says; None when not read).
    complete: bool | None = None
    #: The version of the weight fingerprint it recorded (None: it recorded none).
    fingerprint_version: int | None = None
    #: Whether that fingerprint is a registered lineage base (`scan_tables.registered_base`).
    registered_base: bool = False
    #: When the scan started (`scanner_versions` says; None when not read).
    started_at: datetime | None = None
    #: The registered lineage bases it could not compare, each fingerprinted by an older
    #: fingerprint version only when it was made (`repo_id@commit`: its facts'
    #: `verified_lineage.older_version_bases`; `scanner_versions` says, empty when not read).
    older_version_bases: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordedSubject:
    """The newest recorded scan of a pinned subject, and its decision under one policy."""

    scan_id: str
    status: ScanStatus
    #: The newest decision recorded for this policy digest and environment, if any.
    verdict: Verdict | None


@dataclass(frozen=True)
class InventoryEntry:
    """One model at one commit: its newest recorded scan and that scan's current decision."""

    subject: str
    scan_id: str
    scanned_at: str
    status: ScanStatus
    decision: Decision
    policy_name: str
    policy_digest: str
    environment: str | None
    findings: int
    #: Status of the newest signature check (`verified`, `absent`, ...), None when none ran.
    signature: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _event(actor: str, action: AuditAction, subject: str, **detail: Any) -> AuditEventRow:
    return AuditEventRow(
        at=_now(), actor=actor, action=action.value, subject=subject, detail=detail
    )


def _blob_key(sha256: str) -> int:
    """The advisory lock key of a blob: the first 8 bytes of its SHA-256, as a signed bigint."""
    return int.from_bytes(bytes.fromhex(sha256[:16]), "big", signed=True)


#: Blob locks of the embedded server's job threads (one process): SHA-256 -> lock.
_LOCAL_BLOB_LOCKS: dict[str, threading.Lock] = {}
_LOCAL_BLOB_LOCKS_GUARD = threading.Lock()


class BlobLocks:
    """The blobs one job holds, by SHA-256, from its lookup of each until `release`.

    A job that holds a blob is the only one fetching it: another job asking for the same blob
    waits until the first has recorded its scan (and so the blob, verified and scanned) or
    ended, then finds it recorded instead of fetching it again. On PostgreSQL these are
    session advisory locks on a connection of the job's own, shared by every worker on every
    host, and freed by the server when a killed worker's connection drops; on SQLite, locks of
    this process (the embedded server is the only process running jobs). Blobs must be taken
    in one order (by digest) so that two jobs never wait on each other.
    """

    def __init__(self, store: Store) -> None:
        """Hold nothing yet."""
        self._store = store
        self._connection: Connection | None = None
        self._held: set[str] = set()

    def hold(self, sha256: str) -> None:
        """Wait until no other job holds this blob, then hold it (again: no effect).

        Raises:
            StoreError: The database cannot be reached.
        """
        if sha256 in self._held:
            return
        if self._store.backend != "postgresql":
            with _LOCAL_BLOB_LOCKS_GUARD:
                lock = _LOCAL_BLOB_LOCKS.setdefault(sha256, threading.Lock())
            lock.acquire()
            self._held.add(sha256)
            return
        with self._store._failures(f"lock blob {sha256[:12]} in"):
            if self._connection is None:
                self._connection = self._store._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            self._connection.execute(
                text("SELECT pg_advisory_lock(:key)"), {"key": _blob_key(sha256)}
            )
        self._held.add(sha256)

    def try_hold(self, sha256: str) -> bool:
        """Hold this blob if no job holds it; returns whether it is held now. Never waits
        (`verifier blobs gc`: a blob a job holds is in use).

        Raises:
            StoreError: The database cannot be reached.
        """
        if sha256 in self._held:
            return True
        if self._store.backend != "postgresql":
            with _LOCAL_BLOB_LOCKS_GUARD:
                lock = _LOCAL_BLOB_LOCKS.setdefault(sha256, threading.Lock())
            taken = lock.acquire(blocking=False)
        else:
            with self._store._failures(f"lock blob {sha256[:12]} in"):
                if self._connection is None:
                    self._connection = self._store._engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                taken = bool(
                    self._connection.execute(
                        text("SELECT pg_try_advisory_lock(:key)"), {"key": _blob_key(sha256)}
                    ).scalar()
                )
        if taken:
            self._held.add(sha256)
        return taken

    def release(self) -> None:
        """Let every blob go (the job has recorded its scan, or failed)."""
        held, self._held = self._held, set()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.execute(text("SELECT pg_advisory_unlock_all()"))
            except SQLAlchemyError:
                connection.invalidate()  # a broken connection: the server freed its locks
            finally:
                connection.close()
            return
        for sha256 in held:
            _LOCAL_BLOB_LOCKS[sha256].release()


#: Named locks of this process (SQLite: one server process): name -> lock.
_LOCAL_NAMED_LOCKS: dict[str, threading.Lock] = {}


@contextmanager
def try_exclusive(store: Store, name: str) -> Iterator[bool]:
    """Take the lock `name` if no one holds it; yields whether it was taken (held until the
    block ends). Never waits.

    On PostgreSQL a session advisory lock on a connection of its own (shared by every server
    on every host, freed by the database if the process dies); on SQLite a lock of this
    process.

    Raises:
        StoreError: The database cannot be reached.
    """
    if store.backend != "postgresql":
        with _LOCAL_BLOB_LOCKS_GUARD:
            lock = _LOCAL_NAMED_LOCKS.setdefault(name, threading.Lock())
        taken = lock.acquire(blocking=False)
        try:
            yield taken
        finally:
            if taken:
                lock.release()
        return
    with store._failures(f"take the lock {name} in"):
        connection = store._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # Advisory locks are per database: the schema in the key keeps two deployments (or
        # two test runs) in schemas of one database from taking each other's lock.
        schema = connection.execute(text("SELECT current_schema()")).scalar()
        named = f"{schema}/{name}".encode()
        key = int.from_bytes(hashlib.sha256(named).digest()[:8], "big", signed=True)
        taken = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar()
        )
    try:
        yield taken
    finally:
        try:
            if taken:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except SQLAlchemyError:
            connection.invalidate()  # a broken connection: the server freed the lock
        finally:
            connection.close()


@contextmanager
def wait_exclusive(store: Store, name: str, *, wait_seconds: float) -> Iterator[bool]:
    """`try_exclusive`, tried again every tenth of a second for up to `wait_seconds`; yields
    whether the lock was taken (held until the block ends).

    Raises:
        StoreError: The database cannot be reached.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        with try_exclusive(store, name) as taken:
            if taken or time.monotonic() >= deadline:
                yield taken
                return
        time.sleep(0.1)


class ServiceRecords:
    """What the service keeps beside the scans, in the same database and transactions.

    Every change is written with its audit event in one transaction: there is no change
    without its event, nor an event without its change.
    """

    def __init__(self, store: Store) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    # Tokens

    def create_token(self, *, name: str, role: Role, token_sha256: str, actor: str) -> ApiToken:
        """Record a new token by the SHA-256 of its secret.

        Raises:
            UsageError: A token (even a revoked one) already has this name.
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record a token in"), self._sessions.begin() as session:
            if session.scalars(select(ApiTokenRow.id).where(ApiTokenRow.name == name)).first():
                raise UsageError(
                    f"a token named {name!r} exists already (names are never reused, even "
                    "after revocation): choose another name"
                )
            row = ApiTokenRow(
                name=name,
                role=role.value,
                token_sha256=token_sha256,
                created_at=_now(),
                created_by=actor,
            )
            session.add(row)
            session.add(_event(actor, AuditAction.TOKEN_CREATED, name, role=role.value))
            session.flush()
            return row.to_model()

    def revoke_token(self, name: str, *, actor: str) -> ApiToken:
        """Revoke a token: it never authenticates again.

        Raises:
            NotFoundError: No token has this name.
            UsageError: The token is already revoked.
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("revoke a token in"), self._sessions.begin() as session:
            row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.name == name)).first()
            if row is None:
                raise NotFoundError(f"no token is named {name!r}; see `verifier token list`")
            if row.revoked_at is not None:
                raise UsageError(f"token {name!r} was already revoked at {row.revoked_at}")
            row.revoked_at = _now()
            row.revoked_by = actor
            session.add(_event(actor, AuditAction.TOKEN_REVOKED, name, role=row.role))
            session.flush()
            return row.to_model()

    def list_tokens(self) -> list[ApiToken]:
        """Every token ever created, oldest first, revoked ones included.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._store._failures("list the tokens in"), self._sessions() as session:
            rows = session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id)).all()
            return [row.to_model() for row in rows]

    def authenticate(self, token_sha256: str) -> ApiToken | None:
        """The active token whose secret has this SHA-256, or None.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(ApiTokenRow).where(
            ApiTokenRow.token_sha256 == token_sha256, ApiTokenRow.revoked_at.is_(None)
        )
        with self._store._failures("check a token in"), self._sessions() as session:
            row = session.scalars(query).first()
            return row.to_model() if row is not None else None

    def record_event(self, actor: str, action: AuditAction, subject: str, **detail: Any) -> None:
        """Add an event to the audit log (for changes no other record carries).

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record an audit event in"), self._sessions.begin() as s:
            s.add(_event(actor, action, subject, **detail))

    def audit_events(self, *, limit: int = 100) -> list[AuditEvent]:
        """The newest audit events, newest first.

        Raises:
            UsageError: `limit` is not between 1 and `MAX_AUDIT_EVENTS`.
            StoreError: The database cannot be reached or read.
        """
        if not 1 <= limit <= MAX_AUDIT_EVENTS:
            raise UsageError(f"the number of events must be between 1 and {MAX_AUDIT_EVENTS}")
        query = select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        with self._store._failures("read the audit log in"), self._sessions() as session:
            return [row.to_model() for row in session.scalars(query)]

    # Scan jobs

    def blob_locks(self) -> BlobLocks:
        """A new, empty set of blob locks for one job (see `BlobLocks`)."""
        return BlobLocks(self._store)

    def add_job(self, job: ScanJob, *, enqueue: Callable[[Any], None] | None = None) -> ScanJob:
        """Record a requested scan with its audit event, unless the same request (target,
        policy digest, environment) has a job queued or running already: then that job.

        The database decides (a unique key of open jobs), so two identical requests at the
        same moment, on any number of servers, queue one job between them.

        Args:
            job: The job.
            enqueue: Called with the transaction's DB-API connection after the job's rows are
                written and before they are committed, to queue the job in the same
                transaction: the job and its queue entry are committed together or not at all.

        Returns:
            `job` as recorded, or the open job of the same request.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        for _ in range(_ADD_JOB_ATTEMPTS):
            try:
                self._add_job(job, enqueue=enqueue)
                return job
            except StoreError as exc:
                if not job.open or not isinstance(exc.__cause__, IntegrityError):
                    raise
            # The same request has an open job, recorded meanwhile; it may have finished
            # since, and then this one is recorded after all.
            existing = self.pending_job(
                job.target, policy_digest=job.policy_digest, environment=job.environment
            )
            if existing is not None:
                return existing
        raise StoreError(
            f"could not record the scan job for {job.target}: identical requests kept "
            "finishing while it was recorded; ask again"
        )

    def _add_job(self, job: ScanJob, *, enqueue: Callable[[Any], None] | None) -> None:
        event = _event(
            job.requested_by,
            AuditAction.SCAN_REQUESTED,
            job.target,
            job=job.job_id,
            policy_digest=job.policy_digest,
            environment=job.environment,
            status=job.status.value,
        )
        with self._store._failures("record a scan job in"), self._sessions.begin() as session:
            session.add(ScanJobRow.from_model(job))
            session.flush()  # the unique key of open jobs refuses a second one here
            session.add(event)
            if enqueue is not None:
                session.flush()
                enqueue(session.connection().connection.driver_connection)

    def get_job(self, job_id: str) -> ScanJob:
        """A scan job by its id.

        Raises:
            NotFoundError: No job has this id.
            StoreError: The database cannot be reached or read.
        """
        with self._store._failures("read a scan job from"), self._sessions() as session:
            row = session.get(ScanJobRow, job_id)
            if row is None:
                raise NotFoundError(f"no scan job has the id {job_id!r}")
            return row.to_model()

    def pending_job(
        self, target: str, *, policy_digest: str, environment: str | None
    ) -> ScanJob | None:
        """A queued or running job for the same target, policy digest and environment.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        key = request_key(target, policy_digest=policy_digest, environment=environment)
        query = select(ScanJobRow).where(ScanJobRow.open_key == key)
        with self._store._failures("read the scan jobs in"), self._sessions() as session:
            row = session.scalars(query).first()
            return row.to_model() if row is not None else None

    def unfinished_jobs(self) -> list[ScanJob]:
        """Jobs queued or left running (by a server that stopped), oldest first.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(ScanJobRow)
            .where(ScanJobRow.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
            .order_by(ScanJobRow.created_at)
        )
        with self._store._failures("read the scan jobs in"), self._sessions() as session:
            return [row.to_model() for row in session.scalars(query)]

    def set_job_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        scan_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Move an unfinished job on: queued again, running, or failed (with the error).

        A job already complete or failed is left as it is.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        values: dict[str, Any] = {"status": status.value, "updated_at": _now()}
        if status.value in _FINISHED:
            values["open_key"] = None
        if scan_id is not None:
            values["scan_id"] = scan_id
        if error is not None:
            values["error"] = error
        statement = (
            update(ScanJobRow)
            .where(ScanJobRow.id == job_id, ScanJobRow.status.not_in(_FINISHED))
            .values(**values)
        )
        with self._store._failures("update a scan job in"), self._sessions.begin() as session:
            session.execute(statement)

    def claim_job(self, job_id: str) -> ScanJob | None:
        """Mark a job running, unless it is finished already (then None: nothing to do).

        A job is run again after its worker died, so finding it finished is not an error.

        Raises:
            NotFoundError: No job has this id.
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("claim a scan job in"), self._sessions.begin() as session:
            row = session.get(ScanJobRow, job_id, with_for_update=True)
            if row is None:
                raise NotFoundError(f"no scan job has the id {job_id!r}")
            if row.status in _FINISHED:
                return None
            row.status = JobStatus.RUNNING.value
            row.updated_at = _now()
            session.flush()
            return row.to_model()

    def complete_job(
        self, job_id: str, report: ScanReport, *, bans_seen: int | None = None
    ) -> None:
        """Record a job's scan (files, findings, decision) and the job complete, all or nothing.

        One transaction holds both, with the job's row locked: a scan is recorded for a job
        only while the job is unfinished, so however many attempts a job takes (a worker
        killed mid-scan, a job taken again), it has one complete scan at most. With
        `bans_seen`, only if no ban was made or lifted since (see `Store.record_scan`).

        Raises:
            ValueError: The report's file findings do not read back (see `Store.record_scan`).
            BansChangedError: A ban was made or lifted since `bans_seen`; nothing is recorded.
            StoreError: The job was finished by another attempt (nothing is recorded), or the
                database cannot be reached or refused the write.
        """
        check_file_findings(report)
        action = f"record scan {report.scan_id} of job {job_id} in"
        with self._store._failures(action), self._sessions.begin() as session:
            row = session.get(ScanJobRow, job_id, with_for_update=True)
            if row is None or row.status in _FINISHED:
                raise StoreError(
                    f"scan job {job_id} is finished or gone; the scan {report.scan_id} of "
                    "another attempt of it is not recorded"
                )
            before = None
            if row.requested_by.startswith(RESCAN_ACTOR_PREFIX):
                before = _newest_decision(session, row.target, row.environment)
            # The scan's rows go through the one recorder, in this transaction.
            insert_scan(
                session.connection(), report, error=None, decided_at=_now(), bans_seen=bans_seen
            )
            if before is not None and Decision(before[2]) is not report.verdict.decision:
                session.add(_scanner_change(row, report, before))
            row.status = JobStatus.COMPLETE.value
            row.open_key = None
            row.scan_id = report.scan_id
            # A job queued before a waiver was recorded is decided with it: under the newer
            # digest of the same policy (see `PolicySet.is_earlier_digest`).
            row.policy_digest = report.verdict.policy_digest
            row.error = None
            row.updated_at = _now()

    # Decisions

    def recorded_subject(
        self, subject: str, *, policy_digest: str, environment: str | None
    ) -> RecordedSubject | None:
        """The newest recorded scan of `subject` with its newest decision under this policy.

        Failed scans keep no facts and so never answer: a failed rescan leaves the previous
        scan standing. Returns None when no scan of `subject` is recorded.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        scan_query = (
            select(ScanRow.id, ScanRow.status)
            .join(ScanFactsRow, ScanFactsRow.scan_id == ScanRow.id)
            .where(ScanFactsRow.subject == subject)
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
            .limit(1)
        )
        with self._store._failures("read a decision from"), self._sessions() as session:
            found = session.execute(scan_query).first()
            if found is None:
                return None
            scan_id, status = found
            decision = _decision_under(session, scan_id, policy_digest, environment)
            return RecordedSubject(
                scan_id=scan_id,
                status=ScanStatus(status),
                verdict=decision.to_model() if decision is not None else None,
            )

    def scans_of(self, subject: str, *, limit: int = 100) -> list[tuple[str, str, ScanStatus]]:
        """(scan id, started at, status) of every recorded scan of `subject`, newest first.

        Failed scans keep no facts and are not listed.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(ScanRow.id, ScanRow.started_at, ScanRow.status)
            .join(ScanFactsRow, ScanFactsRow.scan_id == ScanRow.id)
            .where(ScanFactsRow.subject == subject)
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
            .limit(limit)
        )
        with self._store._failures("list the scans in"), self._sessions() as session:
            return [
                (scan_id, format_timestamp(started), ScanStatus(status))
                for scan_id, started, status in session.execute(query)
            ]

    def inventory(self, *, limit: int = 100, offset: int = 0) -> list[InventoryEntry]:
        """Every model@commit ever scanned, by subject, with its newest scan's current decision.

        Raises:
            UsageError: `limit` is not between 1 and `MAX_INVENTORY`, or `offset` is negative.
            StoreError: The database cannot be reached or read.
        """
        if not 1 <= limit <= MAX_INVENTORY or offset < 0:
            raise UsageError(f"limit must be between 1 and {MAX_INVENTORY}, offset at least 0")
        newest = _newest_scans()
        latest = aliased(DecisionRow)
        current = (
            select(latest.id)
            .where(latest.scan_id == ScanRow.id)
            .order_by(latest.id.desc())
            .limit(1)
            .correlate(ScanRow)
            .scalar_subquery()
        )
        findings = (
            select(func.count(FindingRow.id)).where(FindingRow.scan_id == ScanRow.id)
        ).scalar_subquery()
        signature = (
            select(SignatureRow.status)
            .where(SignatureRow.scan_id == ScanRow.id)
            .order_by(SignatureRow.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(newest.c.subject, ScanRow, DecisionRow, findings, signature)
            .join(ScanRow, ScanRow.id == newest.c.scan_id)
            .join(DecisionRow, DecisionRow.id == current)
            .where(newest.c.rank == 1)
            .order_by(newest.c.subject)
            .limit(limit)
            .offset(offset)
        )
        with self._store._failures("read the inventory in"), self._sessions() as session:
            rows = session.execute(query).all()
        return [
            InventoryEntry(
                subject=subject,
                scan_id=scan.id,
                scanned_at=format_timestamp(scan.started_at),
                status=ScanStatus(scan.status),
                decision=Decision(decision.decision),
                policy_name=decision.policy_name,
                policy_digest=decision.policy_digest,
                environment=decision.environment,
                findings=int(count),
                signature=signature_status,
            )
            for subject, scan, decision, count, signature_status in rows
        ]

    def severity_counts(self, scan_ids: Collection[str]) -> dict[str, dict[str, int]]:
        """Scan id -> {severity: number of findings} for these scans (at most MAX_INVENTORY).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(FindingRow.scan_id, FindingRow.severity, func.count(FindingRow.id))
            .where(FindingRow.scan_id.in_(list(scan_ids)[:MAX_INVENTORY]))
            .group_by(FindingRow.scan_id, FindingRow.severity)
        )
        counts: dict[str, dict[str, int]] = {}
        with self._store._failures("count the findings in"), self._sessions() as session:
            for scan_id, severity, count in session.execute(query):
                counts.setdefault(scan_id, {})[severity] = int(count)
        return counts

    def decisions_by_environment(
        self, scan_ids: Collection[str], *, policy_digest: str
    ) -> dict[str, dict[str | None, Decision]]:
        """Scan id -> {environment: its newest decision under this policy digest} for these
        scans (at most MAX_INVENTORY).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(DecisionRow.scan_id, DecisionRow.environment, DecisionRow.decision)
            .where(
                DecisionRow.scan_id.in_(list(scan_ids)[:MAX_INVENTORY]),
                DecisionRow.policy_digest == policy_digest,
            )
            .order_by(DecisionRow.id)
        )
        found: dict[str, dict[str | None, Decision]] = {}
        with self._store._failures("read the decisions in"), self._sessions() as session:
            # Ascending ids: the newest decision of each scan and environment stays.
            for scan_id, environment, decision in session.execute(query):
                found.setdefault(scan_id, {})[environment] = Decision(decision)
        return found

    def scanner_versions(self) -> dict[str, NewestScan]:
        """Hub subject -> its newest recorded scan (failed scans keep no facts: not those), with
        its status, the version of the weight fingerprint it recorded, if any, and the
        registered bases its lineage could not compare: what the re-scans after an upgrade are
        chosen by (`verifier.service.rescans.rescan_need`). One query, on SQLite as on
        PostgreSQL: the newest scan of each subject is chosen in the database
        (`_newest_scans`), so only those rows are read and only their facts extracted.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        prints = WEIGHT_FINGERPRINTS.c
        # Read from the facts only of scans that recorded a fingerprint: only those compared
        # anything (the JSON of the others is not parsed).
        stale_bases = case(
            (
                prints.version.is_not(None),
                SCAN_FACTS.c.document[("verified_lineage", "older_version_bases")],
            ),
            else_=None,
        )
        newest = _newest_scans()
        query = (
            select(
                newest.c.subject,
                ScanRow.id,
                ScanRow.tool_version,
                ScanRow.status,
                prints.version,
                registered_base(prints),
                ScanRow.started_at,
                stale_bases,
            )
            .select_from(newest)
            .join(ScanRow, ScanRow.id == newest.c.scan_id)
            .join(ScanFactsRow, ScanFactsRow.scan_id == ScanRow.id)
            .outerjoin(WEIGHT_FINGERPRINTS, prints.scan_id == ScanRow.id)
            .where(newest.c.rank == 1)
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
        )
        with self._store._failures("read the scans in"), self._sessions() as session:
            return {
                subject: NewestScan(
                    scan_id=scan_id,
                    tool_version=version,
                    complete=status == ScanStatus.COMPLETE.value,
                    fingerprint_version=printed,
                    registered_base=bool(registered),
                    started_at=started,
                    older_version_bases=_labels(stale),
                )
                for subject, scan_id, version, status, printed, registered, started, stale in (
                    session.execute(query)
                )
            }

    def newest_scan_of(self, subject: str) -> NewestScan | None:
        """The newest recorded scan of a Hub subject (failed scans keep no facts: not those).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(ScanRow.id, ScanRow.tool_version)
            .join(ScanFactsRow, ScanRow.id == ScanFactsRow.scan_id)
            .where(ScanFactsRow.subject == subject)
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
            .limit(1)
        )
        with self._store._failures("read the scans in"), self._sessions() as session:
            row = session.execute(query).first()
        return NewestScan(scan_id=row[0], tool_version=row[1]) if row is not None else None

    def jobs_requested_by(self, actor: str) -> dict[str, ScanJob]:
        """Target -> the newest scan job `actor` asked for of it, whatever became of it.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(ScanJobRow)
            .where(ScanJobRow.requested_by == actor)
            .order_by(ScanJobRow.created_at.desc(), ScanJobRow.id.desc())
        )
        found: dict[str, ScanJob] = {}
        with self._store._failures("read the scan jobs in"), self._sessions() as session:
            for row in session.scalars(query):
                found.setdefault(row.target, row.to_model())
        return found

    def decision_of(
        self, scan_id: str, *, policy_digest: str, environment: str | None
    ) -> Verdict | None:
        """A scan's newest decision under this policy digest and environment, if any.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._store._failures("read a decision from"), self._sessions() as session:
            row = _decision_under(session, scan_id, policy_digest, environment)
            return row.to_model() if row is not None else None


_FINISHED = (JobStatus.COMPLETE.value, JobStatus.FAILED.value)


def _newest_decision(
    session: Session, subject: str, environment: str | None
) -> tuple[str, str, str, int | None] | None:
    """(scan id, its verifier version, its newest decision in `environment`, the version of
    the weight fingerprint it recorded or None) of the newest recorded scan of `subject` that
    has one, or None."""
    prints = WEIGHT_FINGERPRINTS.c
    query = (
        select(ScanRow.id, ScanRow.tool_version, DecisionRow.decision, prints.version)
        .join(ScanFactsRow, ScanFactsRow.scan_id == ScanRow.id)
        .join(DecisionRow, DecisionRow.scan_id == ScanRow.id)
        .outerjoin(WEIGHT_FINGERPRINTS, prints.scan_id == ScanRow.id)
        .where(
            ScanFactsRow.subject == subject,
            _same_environment(DecisionRow.environment, environment),
        )
        .order_by(ScanRow.started_at.desc(), ScanRow.id.desc(), DecisionRow.id.desc())
        .limit(1)
    )
    found = session.execute(query).first()
    return (found[0], found[1], found[2], found[3]) if found is not None else None


def _scanner_change(
    job: ScanJobRow, report: ScanReport, before: tuple[str, str, str, int | None]
) -> DecisionChangeRow:
    """The change of decision a re-scan by another scanner version, for a fingerprint of an
    older version, or for a base fingerprinted again, made (cause `scanner`: the causes are a
    closed set that API clients and the docs know; the detail says which versions changed,
    if any)."""
    previous_scan, previous_version, previous, previous_print = before
    printed = fingerprint_version(report)
    return DecisionChangeRow(
        at=_now(),
        scan_id=report.scan_id,
        subject=job.target,
        policy_name=report.verdict.policy_name,
        policy_digest=report.verdict.policy_digest,
        environment=report.verdict.environment,
        previous=previous,
        decision=report.verdict.decision.value,
        cause="scanner",
        detail={
            "previous_scan": previous_scan,
            "previous_tool_version": previous_version,
            "tool_version": report.tool_version,
            "previous_fingerprint_version": previous_print,
            "fingerprint_version": printed,
        },
        actor=job.requested_by,
    )


def _newest_scans() -> Subquery:
    """Each Hub subject's scans (those with facts: not the failed ones) ranked newest first,
    `rank` 1 its newest: the latest `started_at`, the greatest scan id among equal times (the
    order `scans_of` and `newest_scan_of` list them in). Columns `subject`, `scan_id`, `rank`."""
    return (
        select(
            ScanFactsRow.subject,
            ScanFactsRow.scan_id,
            func.row_number()
            .over(
                partition_by=ScanFactsRow.subject,
                order_by=(ScanRow.started_at.desc(), ScanRow.id.desc()),
            )
            .label("rank"),
        )
        .join(ScanRow, ScanRow.id == ScanFactsRow.scan_id)
        .where(ScanFactsRow.subject.is_not(None))
        .subquery()
    )


def _labels(value: Any) -> tuple[str, ...]:
    """The labels of a facts document's list (anything else in it, or no list: none)."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _same_environment(column: Any, environment: str | None) -> Any:
    return column.is_(None) if environment is None else column == environment


def _decision_under(
    session: Session, scan_id: str, policy_digest: str, environment: str | None
) -> DecisionRow | None:
    query = (
        select(DecisionRow)
        .where(
            DecisionRow.scan_id == scan_id,
            DecisionRow.policy_digest == policy_digest,
            _same_environment(DecisionRow.environment, environment),
        )
        .order_by(DecisionRow.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()
