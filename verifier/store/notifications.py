"""Outgoing notifications in the Store's database: what is owed to each URL, the delivery log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from verifier.errors import ConflictError, NotFoundError
from verifier.notifications import (
    MAX_ATTEMPTS,
    MAX_FINDINGS_LISTED,
    MAX_TEXT,
    Attempt,
    DeliveryStatus,
    Notification,
    NotificationEvent,
    Subscription,
    retry_delay,
    url_origin,
)
from verifier.store.bans import Database, _change
from verifier.store.scan_rows import format_timestamp
from verifier.store.tables import (
    AuditEventRow,
    DecisionChangeRow,
    FindingRow,
    NotificationCursorRow,
    NotificationRow,
    NotificationSubscriptionRow,
    ScanFactsRow,
    ScanRow,
)

#: The sources of events read by id, with the cursor each URL keeps of them.
CHANGES, FINDINGS = "change", "finding"
#: Most notifications one read of the log returns.
MAX_LOG = 1_000
#: Most subscriptions recorded at once.
MAX_SUBSCRIPTIONS = 1_000
#: Audit actions of subscriptions (`verifier.service.model.AuditAction` has the same values).
_SUBSCRIBED, _UNSUBSCRIBED = "notification.subscribed", "notification.unsubscribed"
#: What a pending notification's log says once its subscription is removed.
REMOVED = "the subscription was removed; not sent"


def _subscription(row: NotificationSubscriptionRow) -> Subscription:
    return Subscription(
        subscription_id=row.id,
        url=row.url,
        secret=row.secret,
        events=frozenset(NotificationEvent(name) for name in row.events),
        waiver_days=row.waiver_days,
        environment=row.environment,
        publisher=row.publisher,
        created_at=format_timestamp(row.created_at),
        created_by=row.created_by,
    )


def _newest_ids(session: Any) -> dict[str, int]:
    return {
        CHANGES: session.scalar(select(func.max(DecisionChangeRow.id))) or 0,
        FINDINGS: session.scalar(select(func.max(FindingRow.id))) or 0,
    }


class SubscriptionRecords:
    """Notification subscriptions recorded as data; each change with its audit event."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def add(self, subscription: Subscription, *, actor: str) -> Subscription:
        """Record a subscription (its values checked by the caller), with cursors at the newest
        change and finding: it is told of what happens from now on.

        Raises:
            ConflictError: A subscription to the same URL is recorded already, or there are
                MAX_SUBSCRIPTIONS.
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record a subscription in"), self._sessions.begin() as s:
            count = s.scalar(select(func.count()).select_from(NotificationSubscriptionRow))
            if (count or 0) >= MAX_SUBSCRIPTIONS:
                raise ConflictError(
                    f"{MAX_SUBSCRIPTIONS} subscriptions are recorded; remove one first"
                )
            taken = s.scalar(
                select(NotificationSubscriptionRow.id).where(
                    NotificationSubscriptionRow.url == subscription.url
                )
            )
            if taken is not None:
                raise ConflictError(
                    f"subscription {taken} has this URL ({url_origin(subscription.url)}) "
                    "already; remove it first"
                )
            row = NotificationSubscriptionRow(
                url=subscription.url,
                secret=subscription.secret,
                events=sorted(event.value for event in subscription.events),
                waiver_days=subscription.waiver_days,
                environment=subscription.environment,
                publisher=subscription.publisher,
                created_at=datetime.now(UTC),
                created_by=actor,
            )
            s.add(row)
            s.flush()
            # A URL subscribed before keeps no cursor (removed with it): start afresh.
            s.execute(delete(NotificationCursorRow).where(NotificationCursorRow.url == row.url))
            for source, last in _newest_ids(s).items():
                s.add(NotificationCursorRow(url=row.url, source=source, last_id=last))
            s.add(
                AuditEventRow(
                    at=row.created_at,
                    actor=actor,
                    action=_SUBSCRIBED,
                    subject=str(row.id),
                    detail={**_audit_detail(row), "target": url_origin(row.url)},
                )
            )
            return _subscription(row)

    def subscriptions(self) -> list[Subscription]:
        """Every recorded subscription, oldest first (with their secrets: for signing).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(NotificationSubscriptionRow).order_by(NotificationSubscriptionRow.id)
        with self._store._failures("read the subscriptions in"), self._sessions() as session:
            return [_subscription(row) for row in session.scalars(query)]

    def remove(self, subscription_id: int, *, actor: str) -> Subscription:
        """Remove a subscription: nothing more is sent to it, and what was still owed to it
        is given up (`failed`, "the subscription was removed").

        Raises:
            NotFoundError: No subscription has this id.
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("remove a subscription in"), self._sessions.begin() as s:
            row = s.get(NotificationSubscriptionRow, subscription_id)
            if row is None:
                raise NotFoundError(f"no notification subscription has the id {subscription_id}")
            removed = _subscription(row)
            s.execute(
                update(NotificationRow)
                .where(
                    NotificationRow.url == row.url,
                    NotificationRow.status == DeliveryStatus.PENDING.value,
                )
                .values(
                    status=DeliveryStatus.FAILED.value, next_attempt_at=None, last_error=REMOVED
                )
            )
            s.execute(delete(NotificationCursorRow).where(NotificationCursorRow.url == row.url))
            s.delete(row)
            s.add(
                AuditEventRow(
                    at=datetime.now(UTC),
                    actor=actor,
                    action=_UNSUBSCRIBED,
                    subject=str(subscription_id),
                    detail={**_audit_detail(row), "target": url_origin(row.url)},
                )
            )
            return removed


def _audit_detail(row: NotificationSubscriptionRow) -> dict[str, Any]:
    """What the audit log keeps of a subscription: never its secret, nor its URL's path."""
    return {
        "events": sorted(row.events),
        "waiver_days": row.waiver_days,
        "environment": row.environment,
        "publisher": row.publisher,
    }


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
            newest = _newest_ids(s)
            known = {(c.url, c.source) for c in s.scalars(select(NotificationCursorRow))}
            for url in urls:
                for source, last in newest.items():
                    if (url, source) not in known:
                        s.add(NotificationCursorRow(url=url, source=source, last_id=last))

    def collect(
        self,
        subscriptions: Sequence[Subscription],
        *,
        expiring_waivers: Sequence[dict[str, Any]],
        now: datetime,
    ) -> int:
        """Record, for each subscription, a notification of each decision change and of each
        scan with critical findings recorded since its cursors (moved past them), and of each
        waiver in `expiring_waivers` it was not told of, when it wants them
        (`Subscription.wants`). Returns how many were recorded.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        added = 0
        urls = [subscription.url for subscription in subscriptions]
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
            for subscription in subscriptions:
                url = subscription.url
                if (url, CHANGES) not in cursors or (url, FINDINGS) not in cursors:
                    continue  # removed meanwhile, or not started yet: the next pass starts it
                owed = self._changes_since(s, cursors[(url, CHANGES)])
                owed += self._findings_since(s, cursors[(url, FINDINGS)])
                owed += [
                    (NotificationEvent.WAIVER_EXPIRING, f"waiver:{w['id']}:{w['expires']}", w)
                    for w in expiring_waivers
                ]
                for event, key, data in owed:
                    if (url, key) in keys or not subscription.wants(event, data):
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

    def give_up(self, notification_id: int, reason: str) -> None:
        """Mark a pending notification failed without an attempt (nowhere to send it now).

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record a delivery in"), self._sessions.begin() as session:
            row = session.get(NotificationRow, notification_id)
            if row is not None and row.status == DeliveryStatus.PENDING.value:
                row.status = DeliveryStatus.FAILED.value
                row.next_attempt_at, row.last_error = None, reason

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
