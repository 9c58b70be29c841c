"""Waivers and approvals recorded through the service, each with its audit event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from verifier.errors import ConflictError, NotFoundError, StoreError
from verifier.model import Approval
from verifier.policy.schema import Waiver
from verifier.service.model import AuditAction
from verifier.store.bans import Database
from verifier.store.scan_rows import format_timestamp
from verifier.store.tables import (
    ApprovalRow,
    AuditEventRow,
    ScanRow,
    WaiverRevocationRow,
    WaiverRow,
)

#: Which recorded waivers a policy set holds: (how many are in force, a change number that
#: grows with every waiver and every revocation recorded). Neither kind of row is ever changed
#: or deleted, so equal generations mean equal waivers, and a larger change number is newer.
WaiverGeneration = tuple[int, int]


@dataclass(frozen=True)
class RecordedWaiver:
    """A waiver recorded through the service, with who recorded it and when."""

    row_id: int
    waiver: Waiver
    created_at: str
    created_by: str

    def document(self) -> dict[str, object]:
        """The waiver as the API shows it."""
        return {
            **self.waiver.model_dump(mode="json"),
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


def _to_model(row: WaiverRow) -> RecordedWaiver:
    return RecordedWaiver(
        row_id=row.id,
        waiver=Waiver(
            id=row.waiver_id,
            rule=row.rule,
            subject=row.subject,
            expires=row.expires,
            approved_by=row.approved_by,
            ticket=row.ticket,
            justification=row.justification,
        ),
        created_at=format_timestamp(row.created_at),
        created_by=row.created_by,
    )


class WaiverRecords:
    """Recorded waivers (append-only) and approvals made through the service."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def add_waiver(self, waiver: Waiver, *, actor: str) -> RecordedWaiver:
        """Record `waiver` with its audit event, in one transaction.

        Raises:
            ConflictError: A recorded waiver has the same id.
            StoreError: The database cannot be reached or refused the write.
        """
        taken = ConflictError(f"a waiver with the id {waiver.id!r} is recorded already")
        at = datetime.now(UTC)
        try:
            with self._store._failures("record a waiver in"), self._sessions.begin() as session:
                exists = select(WaiverRow.id).where(WaiverRow.waiver_id == waiver.id)
                if session.scalars(exists).first() is not None:
                    raise taken
                row = WaiverRow(
                    waiver_id=waiver.id,
                    rule=waiver.rule,
                    subject=waiver.subject,
                    expires=waiver.expires,
                    approved_by=waiver.approved_by,
                    ticket=waiver.ticket,
                    justification=waiver.justification,
                    created_at=at,
                    created_by=actor,
                )
                session.add(row)
                session.flush()
                session.add(
                    AuditEventRow(
                        at=at,
                        actor=actor,
                        action=AuditAction.WAIVER_ADDED.value,
                        subject=waiver.subject,
                        detail={
                            "waiver": waiver.id,
                            "rule": waiver.rule,
                            "expires": waiver.expires.isoformat(),
                            "ticket": waiver.ticket,
                        },
                    )
                )
                return _to_model(row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # the same id, recorded meanwhile
                raise taken from None
            raise

    def revoke_waiver(self, waiver_id: str, *, reason: str, actor: str) -> RecordedWaiver:
        """End a recorded waiver before its expiry, with its audit event, in one transaction.

        Raises:
            NotFoundError: No waiver with this id was recorded through the service.
            ConflictError: It was revoked already.
            StoreError: The database cannot be reached or refused the write.
        """
        done = ConflictError(f"the waiver {waiver_id!r} was revoked already")
        at = datetime.now(UTC)
        try:
            with self._store._failures("revoke a waiver in"), self._sessions.begin() as session:
                query = select(WaiverRow).where(WaiverRow.waiver_id == waiver_id)
                row = session.scalars(query).first()
                if row is None:
                    raise NotFoundError(
                        f"no waiver with the id {waiver_id!r} was recorded through the service "
                        "(a waiver of the policy file or a waivers file ends when it is removed "
                        "there)"
                    )
                revoked = select(WaiverRevocationRow.id).where(
                    WaiverRevocationRow.waiver_id == waiver_id
                )
                if session.scalars(revoked).first() is not None:
                    raise done
                session.add(
                    WaiverRevocationRow(
                        waiver_id=waiver_id, reason=reason, revoked_at=at, revoked_by=actor
                    )
                )
                session.add(
                    AuditEventRow(
                        at=at,
                        actor=actor,
                        action=AuditAction.WAIVER_REVOKED.value,
                        subject=row.subject,
                        detail={"waiver": waiver_id, "rule": row.rule, "reason": reason},
                    )
                )
                return _to_model(row)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):  # revoked meanwhile
                raise done from None
            raise

    def waivers(self) -> list[RecordedWaiver]:
        """Every recorded waiver in force (not revoked; expired ones included), oldest first.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        revoked = select(WaiverRevocationRow.waiver_id)
        query = select(WaiverRow).where(WaiverRow.waiver_id.not_in(revoked)).order_by(WaiverRow.id)
        with self._store._failures("read the waivers in"), self._sessions() as session:
            return [_to_model(row) for row in session.scalars(query)]

    def generation(self) -> WaiverGeneration:
        """(how many in force, change number) of the recorded waivers: one cheap query.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        waivers = select(func.count(WaiverRow.id), func.coalesce(func.max(WaiverRow.id), 0))
        revocations = select(
            func.count(WaiverRevocationRow.id), func.coalesce(func.max(WaiverRevocationRow.id), 0)
        )
        with self._store._failures("read the waivers in"), self._sessions() as session:
            count, newest = session.execute(waivers).one()
            ended, newest_ended = session.execute(revocations).one()
        return int(count) - int(ended), int(newest) + int(newest_ended)

    def record_approval(
        self, scan_id: str, approval: Approval, *, subject: str, actor: str
    ) -> None:
        """Append a countersignature of a recorded scan with its audit event, in one
        transaction.

        Raises:
            NotFoundError: No scan has this id.
            StoreError: The database cannot be reached or refused the write.
        """
        action = f"record an approval of scan {scan_id} in"
        with self._store._failures(action), self._sessions.begin() as session:
            if session.get(ScanRow, scan_id) is None:
                raise NotFoundError(f"no recorded scan has the id {scan_id}")
            session.add(ApprovalRow.from_model(scan_id, approval))
            session.add(
                AuditEventRow(
                    at=datetime.fromisoformat(approval.approved_at),
                    actor=actor,
                    action=AuditAction.APPROVAL_RECORDED.value,
                    subject=subject,
                    detail={
                        "scan_id": scan_id,
                        "key_fingerprint": approval.key_fingerprint,
                        "bundle_sha256": approval.bundle_sha256,
                        "files": approval.files,
                    },
                )
            )
