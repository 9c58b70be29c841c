"""Outgoing notifications in the Store's database: what is owed to each URL, the delivery log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from verifier.notifications import (
    MAX_ATTEMPTS,
    MAX_FINDINGS_LISTED,
    MAX_TEXT,
    Attempt,
    DeliveryStatus,
    Notification,
    NotificationEvent,
    retry_delay,
)
from verifier.store.bans import Database, _change
from verifier.store.tables import (
    DecisionChangeRow,
    FindingRow,
    NotificationCursorRow,
    NotificationRow,
    ScanFactsRow,
    ScanRow,
    format_timestamp,
)

#: The sources of events read by id, with the cursor each URL keeps of them.
CHANGES, FINDINGS = "change", "finding"
#: Most notifications one read of the log returns.
MAX_LOG = 1_000


def _notification(row: NotificationRow) -> Notification:
    return Notification(
        notification_id=row.id,
        url=row.url,
        event=NotificationEvent(row.event),
        event_key=row.event_key,
        data=dict(row.data),
        created_at=format_timestamp(row.created_at),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=(
            format_timestamp(row.next_attempt_at) if row.next_attempt_at is not None else None
        ),
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=format_timestamp(row.delivered_at) if row.delivered_at is not None else None,
    )


class NotificationRecords:
    """Notifications owed and delivered; rows change only as their delivery goes on."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def start_cursors(self, urls: Iterable[str]) -> None:
        """Give each URL seen for the first time cursors at the newest change and finding, so
        that it is told of what happens from now on, not of the whole history.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        with (
            self._store._failures("start the notification cursors in"),
            self._sessions.begin() as s,
        ):
            newest = {
                CHANGES: s.scalar(select(func.max(DecisionChangeRow.id))) or 0,
                FINDINGS: s.scalar(select(func.max(FindingRow.id))) or 0,
            }
            known = {(c.url, c.source) for c in s.scalars(select(NotificationCursorRow))}
            for url in urls:
                for source, last in newest.items():
                    if (url, source) not in known:
                        s.add(NotificationCursorRow(url=url, source=source, last_id=last))

    def collect(
        self,
        urls: Sequence[str],
        *,
        expiring_waivers: Sequence[dict[str, Any]],
        now: datetime,
    ) -> int:
        """Record, for each URL, a notification of each decision change and of each scan with
        critical findings recorded since its cursors (moved past them), and of each waiver in
        `expiring_waivers` it was not told of. Returns how many were recorded.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        added = 0
        with self._store._failures("record notifications in"), self._sessions.begin() as s:
            cursors = {(c.url, c.source): c for c in s.scalars(select(NotificationCursorRow))}
            keys = {
                (url, key)
                for url, key in s.execute(
                    select(NotificationRow.url, NotificationRow.event_key).where(
                        NotificationRow.url.in_(urls)
                    )
                )
            }
            for url in urls:
                owed = self._changes_since(s, cursors[(url, CHANGES)])
                owed += self._findings_since(s, cursors[(url, FINDINGS)])
                owed += [
                    (NotificationEvent.WAIVER_EXPIRING, f"waiver:{w['id']}:{w['expires']}", w)
                    for w in expiring_waivers
                ]
                for event, key, data in owed:
                    if (url, key) in keys:
                        continue
                    keys.add((url, key))
                    s.add(
                        NotificationRow(
                            url=url,
                            event=event.value,
                            event_key=key,
                            data=data,
                            created_at=now,
                            status=DeliveryStatus.PENDING.value,
                            attempts=0,
                            next_attempt_at=now,
                        )
                    )
                    added += 1
        return added

    @staticmethod
    def _changes_since(
        session: Any, cursor: NotificationCursorRow
    ) -> list[tuple[NotificationEvent, str, dict[str, Any]]]:
        rows = session.scalars(
            select(DecisionChangeRow)
            .where(DecisionChangeRow.id > cursor.last_id)
            .order_by(DecisionChangeRow.id)
        ).all()
        if rows:
            cursor.last_id = rows[-1].id
        return [
            (NotificationEvent.DECISION_CHANGED, f"change:{row.id}", _change(row).document())
            for row in rows
        ]

    @staticmethod
    def _findings_since(
        session: Any, cursor: NotificationCursorRow
    ) -> list[tuple[NotificationEvent, str, dict[str, Any]]]:
        newest = session.scalar(select(func.max(FindingRow.id))) or 0
        if newest <= cursor.last_id:
            return []
        query = (
            select(FindingRow, ScanRow.target, ScanFactsRow.subject)
            .join(ScanRow, ScanRow.id == FindingRow.scan_id)
            .outerjoin(ScanFactsRow, ScanFactsRow.scan_id == FindingRow.scan_id)
            .where(
                FindingRow.id > cursor.last_id,
                FindingRow.id <= newest,
                FindingRow.severity == "critical",
            )
            .order_by(FindingRow.id)
        )
        by_scan: dict[str, dict[str, Any]] = {}
        for finding, target, subject in session.execute(query):
            entry = by_scan.setdefault(
                finding.scan_id,
                {"scan_id": finding.scan_id, "subject": subject or target, "findings": []},
            )
            if len(entry["findings"]) < MAX_FINDINGS_LISTED:
                entry["findings"].append(
                    {
                        "code": finding.code,
                        "file": finding.file_path,
                        "message": finding.message[:MAX_TEXT],
                    }
                )
        cursor.last_id = newest
        return [
            (NotificationEvent.CRITICAL_FINDINGS, f"findings:{scan_id}", data)
            for scan_id, data in by_scan.items()
        ]

    def due(self, *, now: datetime, limit: int) -> list[Notification]:
        """Pending notifications whose next attempt is due, oldest first.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = (
            select(NotificationRow)
            .where(
                NotificationRow.status == DeliveryStatus.PENDING.value,
                NotificationRow.next_attempt_at <= now,
            )
            .order_by(NotificationRow.id)
            .limit(limit)
        )
        with self._store._failures("read the notifications in"), self._sessions() as session:
            return [_notification(row) for row in session.scalars(query)]

    def record_attempt(self, notification_id: int, attempt: Attempt, *, now: datetime) -> None:
        """Record one delivery attempt: delivered, due again after a back-off, or given up
        after MAX_ATTEMPTS.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record a delivery in"), self._sessions.begin() as session:
            row = session.get(NotificationRow, notification_id)
            if row is None:
                return
            row.attempts += 1
            row.last_status = attempt.status
            row.last_error = attempt.error
            if attempt.delivered:
                row.status = DeliveryStatus.DELIVERED.value
                row.delivered_at, row.next_attempt_at = now, None
            elif row.attempts >= MAX_ATTEMPTS:
                row.status = DeliveryStatus.FAILED.value
                row.next_attempt_at = None
            else:
                row.next_attempt_at = now + timedelta(seconds=retry_delay(row.attempts))

    def log(self, *, limit: int = 100) -> list[Notification]:
        """The newest notifications, newest first, with how their delivery went.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(NotificationRow).order_by(NotificationRow.id.desc()).limit(limit)
        with self._store._failures("read the notifications in"), self._sessions() as session:
            return [_notification(row) for row in session.scalars(query)]
