"""Bans, the estate of recorded models, and the log of decision changes, in the Store's database."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqlalchemy import or_, select

from verifier.bans import Ban, BanHit, BanKind, blast_radius, estate_model, hits_for, with_model
from verifier.errors import NotFoundError, UsageError
from verifier.facts import parse_facts_document
from verifier.model import Decision, ScanFacts, Verdict
from verifier.policy.compiled import PublisherRegistry
from verifier.service.model import AuditAction
from verifier.store.scan_rows import bans_changed, format_timestamp
from verifier.store.scan_tables import (
    BAN_IN_FORCE,
    BANS,
    DECISIONS,
    SCAN_FACTS,
    SCANS,
    bans_unchanged,
    lock_bans,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from verifier.store.tables import DecisionChangeRow

#: Most decision changes one read returns.
MAX_CHANGES = 1_000
_BAN, _LIFT = "ban", "lift"


@dataclass(frozen=True)
class DecisionChange:
    """A recorded model's decision changed under one policy and environment, and why."""

    change_id: int
    at: str
    scan_id: str
    subject: str
    policy_name: str
    policy_digest: str
    environment: str | None
    previous: Decision | None
    decision: Decision
    cause: str
    detail: dict[str, Any]
    actor: str

    def document(self) -> dict[str, Any]:
        """The JSON form (`verifier changes --format json`, `GET /api/v1/decision-changes`)."""
        return {
            "id": self.change_id,
            "at": self.at,
            "scan_id": self.scan_id,
            "subject": self.subject,
            "policy": self.policy_name,
            "policy_digest": self.policy_digest,
            "environment": self.environment,
            "previous": self.previous.value if self.previous is not None else None,
            "decision": self.decision.value,
            "cause": self.cause,
            "detail": dict(self.detail),
            "actor": self.actor,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _same_environment(environment: str | None) -> Any:
    column = DECISIONS.c.environment
    return column.is_(None) if environment is None else column == environment


class _Lift(NamedTuple):
    """What a ban shows of its lift, read with it in one query (`BanRecords.bans`)."""

    actor: str
    at: datetime
    reason: str


def _ban(row: Any, lift: Any | None) -> Ban:
    """The ban of a row of `bans` (an ORM `BanRow` or a Core row: both have the columns as
    attributes) and of its lift, if lifted."""
    return Ban(
        ban_id=row.id,
        kind=BanKind(row.kind),
        value=row.value,
        reason=row.reason,
        banned_by=row.actor,
        banned_at=format_timestamp(row.at),
        lifted_by=lift.actor if lift is not None else None,
        lifted_at=format_timestamp(lift.at) if lift is not None else None,
        lift_reason=lift.reason if lift is not None else None,
    )


def _change(row: DecisionChangeRow) -> DecisionChange:
    return DecisionChange(
        change_id=row.id,
        at=format_timestamp(row.at),
        scan_id=row.scan_id,
        subject=row.subject,
        policy_name=row.policy_name,
        policy_digest=row.policy_digest,
        environment=row.environment,
        previous=Decision(row.previous) if row.previous is not None else None,
        decision=Decision(row.decision),
        cause=row.cause,
        detail=dict(row.detail),
        actor=row.actor,
    )


class Database(Protocol):
    """What these records need of `verifier.store.Store` (which imports this module)."""

    @property
    def _engine(self) -> Engine: ...

    @property
    def _sessions(self) -> sessionmaker[Session]: ...

    def _failures(self, action: str) -> AbstractContextManager[None]: ...


class BanRecords:
    """Bans and decision changes: rows are only ever added (a lift is a row of its own)."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store

    @property
    def _sessions(self) -> sessionmaker[Session]:
        # Taken when used: `bans_reaching`, on every scan's path, reads through Core only.
        return self._store._sessions

    def add_ban(self, kind: BanKind, value: str, *, reason: str, actor: str) -> Ban:
        """Record a ban (value and reason already checked) with its audit event.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import AuditEventRow, BanRow

        with self._store._failures("record a ban in"), self._sessions.begin() as session:
            # Ordered against scans being recorded (see `lock_bans`): a scan that looked up
            # the bans before this one is either seen by this ban's re-decision or sees it.
            lock_bans(session.connection(), exclusive=True)
            row = BanRow(
                action=_BAN, kind=kind.value, value=value, reason=reason, actor=actor, at=_now()
            )
            session.add(row)
            session.flush()
            session.add(
                AuditEventRow(
                    at=row.at,
                    actor=actor,
                    action=AuditAction.BAN_ADDED.value,
                    subject=f"{kind.value} {value}",
                    detail={"ban": row.id, "reason": reason},
                )
            )
            return _ban(row, None)

    def lift_ban(self, ban_id: int, *, reason: str, actor: str) -> Ban:
        """Record the lift of a ban in force, with its audit event.

        Raises:
            NotFoundError: No ban has this id.
            UsageError: The ban was lifted already.
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import AuditEventRow, BanRow

        with self._store._failures("lift a ban in"), self._sessions.begin() as session:
            lock_bans(session.connection(), exclusive=True)  # as `add_ban`
            ban = session.get(BanRow, ban_id)
            if ban is None or ban.action != _BAN:
                raise NotFoundError(f"no ban has the id {ban_id}; see `verifier ban list`")
            lifted = session.scalars(select(BanRow).where(BanRow.lifts == ban_id)).first()
            if lifted is not None:
                raise UsageError(f"ban {ban_id} was lifted already, at {lifted.at.isoformat()}")
            lift = BanRow(
                action=_LIFT,
                kind=ban.kind,
                value=ban.value,
                reason=reason,
                actor=actor,
                at=_now(),
                lifts=ban_id,
            )
            session.add(lift)
            session.add(
                AuditEventRow(
                    at=lift.at,
                    actor=actor,
                    action=AuditAction.BAN_LIFTED.value,
                    subject=f"{ban.kind} {ban.value}",
                    detail={"ban": ban_id, "reason": reason},
                )
            )
            session.flush()
            return _ban(ban, lift)

    def bans(self, *, active_only: bool = False) -> list[Ban]:
        """Every ban, oldest first, with its lift when lifted (or only those in force).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        lift = BANS.alias("lift")
        query = (
            select(BANS, *(column.label(f"lift_{column.name}") for column in lift.c))
            .outerjoin(lift, lift.c.lifts == BANS.c.id)
            .where(BANS.c.action == _BAN)
            .order_by(BANS.c.id)
        )
        with self._store._failures("read the bans in"), self._store._engine.connect() as db:
            rows = db.execute(query).all()
        found = [
            _ban(
                row,
                None
                if row.lift_id is None
                else _Lift(row.lift_actor, row.lift_at, row.lift_reason),
            )
            for row in rows
        ]
        return [ban for ban in found if ban.active] if active_only else found

    def record_reach(self, ban_id: int, subjects: Iterable[str]) -> None:
        """Record the models a ban reached when it was made or lifted.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import BanReachRow

        rows = [BanReachRow(ban=ban_id, subject=subject) for subject in sorted(set(subjects))]
        with self._store._failures("record a ban in"), self._sessions.begin() as session:
            session.add_all(rows)

    def banned_or_lifted_since(
        self, subject: str, scan_id: str, *, policy_digest: str, environment: str | None
    ) -> bool:
        """Whether a ban that reached `subject` was made or lifted after the scan's newest
        decision under this policy digest and environment (so that decision may not hold).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from sqlalchemy.orm import aliased

        from verifier.store.tables import BanReachRow, BanRow, DecisionRow

        decided = (
            select(DecisionRow.decided_at)
            .where(
                DecisionRow.scan_id == scan_id,
                DecisionRow.policy_digest == policy_digest,
                _same_environment(environment),
            )
            .order_by(DecisionRow.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        lift = aliased(BanRow)
        query = (
            select(BanReachRow.id)
            .join(BanRow, BanRow.id == BanReachRow.ban)
            .outerjoin(lift, lift.lifts == BanRow.id)
            .where(
                BanReachRow.subject == subject,
                or_(BanRow.at >= decided, lift.at >= decided),
            )
            .limit(1)
        )
        with self._store._failures("read the bans in"), self._sessions() as session:
            return session.scalars(query).first() is not None

    def estate(self) -> list[ScanFacts]:
        """The facts of the newest scan of every recorded model, by model.

        A model is its subject (`hf://ns/name@commit`), else its scanned target. Failed
        scans keep no facts and so are never part of it.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(SCAN_FACTS.c.subject, SCANS.c.target, SCAN_FACTS.c.document)
            .join(SCANS, SCANS.c.id == SCAN_FACTS.c.scan_id)
            .order_by(SCANS.c.started_at.desc(), SCANS.c.id.desc())
        )
        seen: set[str] = set()
        newest: list[ScanFacts] = []
        with (
            self._store._failures("read the recorded models in"),
            self._store._engine.connect() as db,
        ):
            for subject, target, document in db.execute(query):
                key = subject or target
                if key in seen:
                    continue
                seen.add(key)
                newest.append(parse_facts_document(document))
        return newest

    def newest_scan_ids(self) -> list[str]:
        """The id of the newest scan of every recorded model (the scans `estate` reads), read
        without their facts.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import ScanFactsRow, ScanRow

        query = (
            select(ScanFactsRow.subject, ScanRow.target, ScanRow.id)
            .join(ScanRow, ScanRow.id == ScanFactsRow.scan_id)
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
        )
        seen: set[str] = set()
        newest: list[str] = []
        with self._store._failures("read the recorded models in"), self._sessions() as session:
            for subject, target, scan_id in session.execute(query):
                key = subject or target
                if key not in seen:
                    seen.add(key)
                    newest.append(scan_id)
        return newest

    def newest_decisions(
        self, *, environment: str | None
    ) -> dict[str, tuple[str, list[dict[str, Any]]]]:
        """Scan id -> (policy digest, waivers) of its newest decision in this environment,
        under whichever policy made it, for every scan decided in it.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import DecisionRow

        query = (
            select(DecisionRow.scan_id, DecisionRow.policy_digest, DecisionRow.waivers)
            .where(_same_environment(environment))
            .order_by(DecisionRow.id)
        )
        with self._store._failures("read the decisions in"), self._sessions() as session:
            # Ascending ids: the newest decision of each scan is the one left in the map.
            return {
                scan_id: (digest, list(waivers or []))
                for scan_id, digest, waivers in session.execute(query)
            }

    def bans_reaching(
        self, facts: ScanFacts, *, publishers: PublisherRegistry
    ) -> tuple[BanHit, ...]:
        """The bans in force that reach the model of `facts`, recorded or about to be.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        # One small query first: scans run far more often than bans are in force.
        with self._store._failures("read the bans in"), self._store._engine.connect() as db:
            if db.execute(BAN_IN_FORCE).first() is None:
                return ()
        active = self.bans(active_only=True)
        if not active:
            return ()
        model = estate_model(facts, publishers=publishers)
        estate = [estate_model(f, publishers=publishers) for f in self.estate()]
        return hits_for(model.key, blast_radius(active, with_model(estate, model)))

    def record_decision(
        self,
        scan_id: str,
        verdict: Verdict,
        *,
        subject: str,
        previous: Decision | None,
        cause: str,
        detail: dict[str, Any],
        actor: str,
        bans_seen: int | None = None,
    ) -> DecisionChange | None:
        """Append a decision for a recorded scan and, when it differs from `previous`, the
        change with its cause, in one transaction. Returns the change, if any.

        With `bans_seen`, the bans' generation read before the decision looked up the bans in
        force, nothing is recorded when a ban was made or lifted since (as
        `Store.record_scan`).

        Raises:
            BansChangedError: A ban was made or lifted since `bans_seen`.
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import DecisionChangeRow, DecisionRow

        at = _now()
        change = None
        if previous is not verdict.decision:
            change = DecisionChangeRow(
                at=at,
                scan_id=scan_id,
                subject=subject,
                policy_name=verdict.policy_name,
                policy_digest=verdict.policy_digest,
                environment=verdict.environment,
                previous=previous.value if previous is not None else None,
                decision=verdict.decision.value,
                cause=cause,
                detail=detail,
                actor=actor,
            )
        with self._store._failures("record a decision in"), self._sessions.begin() as session:
            session.add(DecisionRow.from_model(scan_id, verdict, decided_at=at))
            if change is not None:
                session.add(change)
            session.flush()
            if bans_seen is not None and not bans_unchanged(session.connection(), bans_seen):
                raise bans_changed(scan_id)
            return _change(change) if change is not None else None

    def current_verdict(self, scan_id: str, *, environment: str | None) -> Verdict | None:
        """The scan's newest decision in this environment, under whichever policy made it.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import DecisionRow

        query = (
            select(DecisionRow)
            .where(DecisionRow.scan_id == scan_id, _same_environment(environment))
            .order_by(DecisionRow.id.desc())
            .limit(1)
        )
        with self._store._failures("read a decision from"), self._sessions() as session:
            found = session.scalars(query).first()
            return found.to_model() if found is not None else None

    def changes(self, *, limit: int = 100, subject: str | None = None) -> list[DecisionChange]:
        """The newest decision changes, newest first (of one model when `subject` is given).

        Raises:
            UsageError: `limit` is not between 1 and `MAX_CHANGES`.
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import DecisionChangeRow

        if not 1 <= limit <= MAX_CHANGES:
            raise UsageError(f"the number of changes must be between 1 and {MAX_CHANGES}")
        query = select(DecisionChangeRow).order_by(DecisionChangeRow.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(DecisionChangeRow.subject == subject)
        with self._store._failures("read the decision changes in"), self._sessions() as session:
            return [_change(row) for row in session.scalars(query)]
