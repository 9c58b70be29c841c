"""Outgoing notifications, sent: collect what each URL is owed, deliver what is due (HTTP).

`run_pass` does both, one server at a time: the server's delivery thread every
`ServiceConfig.delivery_seconds` (`verifier.service.upkeep.start_background`), and each upkeep
pass after it decided again. The events, their signature and the retry schedule are in
`verifier.notifications`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from verifier import __version__
from verifier.errors import UsageError
from verifier.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    MAX_DELIVERIES_PER_PASS,
    MAX_TEXT,
    REQUEST_TIMEOUT,
    SIGNATURE_HEADER,
    Attempt,
    Notification,
    NotificationEvent,
    Subscription,
    check_notify_url,
    sign,
)
from verifier.store.notifications import REMOVED, NotificationRecords, SubscriptionRecords
from verifier.store.service_records import try_exclusive

if TYPE_CHECKING:
    from verifier.service.core import Service

#: The database lock one delivery pass holds: one server at a time records and sends, so no
#: notification is sent twice by two servers.
LOCK_NAME = "verifier.notify"


def subscriptions(service: Service) -> list[Subscription]:
    """Where notifications go: the server's `--notify-url`s (every event, no filter, signed
    with `VERIFIER_NOTIFY_SECRET`) and the subscriptions recorded in the database. A URL both
    configured and recorded is the recorded one's.

    Raises:
        StoreError: The database cannot be reached or read.
    """
    recorded = SubscriptionRecords(service.store).subscriptions()
    taken = {subscription.url for subscription in recorded}
    configured = [
        Subscription(
            subscription_id=None,
            url=url,
            secret=service.config.notify_secret or "",
            events=frozenset(NotificationEvent),
            waiver_days=service.config.notify_waiver_days,
        )
        for url in service.config.notify_urls
        if url not in taken and service.config.notify_secret is not None
    ]
    return [*configured, *recorded]


def expiring_waivers(service: Service, *, today: date, days: int) -> list[dict[str, Any]]:
    """The waivers of the server's policy (any environment) that expire within `days` days
    of `today`, and have not expired yet, by id."""
    horizon = today + timedelta(days=days)
    found: dict[str, dict[str, Any]] = {}
    # With the waivers recorded through the service, as the decisions use them.
    for policy in service.policies.current(service.store).each():
        for waiver in policy.waivers:
            if today <= waiver.expires <= horizon:
                found[waiver.id] = {
                    "id": waiver.id,
                    "rule": waiver.rule,
                    "subject": waiver.subject,
                    "expires": waiver.expires.isoformat(),
                    "days_left": (waiver.expires - today).days,
                    "approved_by": waiver.approved_by,
                    "ticket": waiver.ticket,
                }
    return [found[key] for key in sorted(found)]


def prepare(service: Service) -> None:
    """Start the cursors of a URL configured for the first time at the newest change and
    finding, before the pass records any: it is told of what happens from now on (a recorded
    subscription's cursors start when it is recorded).

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    if service.config.notify_urls:
        NotificationRecords(service.store).start_cursors(service.config.notify_urls)


def collect(service: Service, *, now: datetime) -> int:
    """Record what each subscription is owed now; returns how many notifications.

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    wanted = subscriptions(service)
    if not wanted:
        return 0
    records = NotificationRecords(service.store)
    days = max(subscription.waiver_days for subscription in wanted)
    waivers = expiring_waivers(service, today=now.astimezone(UTC).date(), days=days)
    return records.collect(wanted, expiring_waivers=waivers, now=now)


def deliver_due(service: Service, *, now: datetime) -> list[tuple[Notification, Attempt]]:
    """Attempt every notification due at `now` (at most MAX_DELIVERIES_PER_PASS), signed
    with its subscription's secret, recording each attempt; returns them. One whose
    subscription is gone (removed, or its flag no longer given) is given up unsent.

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    records = NotificationRecords(service.store)
    secrets = {subscription.url: subscription.secret for subscription in subscriptions(service)}
    done = []
    for notification in records.due(now=now, limit=MAX_DELIVERIES_PER_PASS):
        secret = secrets.get(notification.url)
        if not secret:
            records.give_up(notification.notification_id, REMOVED)
            continue
        attempt = deliver(notification, secret, timestamp=int(now.timestamp()))
        records.record_attempt(notification.notification_id, attempt, now=now)
        done.append((notification, attempt))
    return done


@dataclass
class DeliveryPass:
    """What one delivery pass did."""

    #: Notifications recorded (owed to a subscription from now on).
    notified: int = 0
    #: The delivery attempts made, each with its notification.
    delivered: list[tuple[Notification, Attempt]] = field(default_factory=list)


def run_pass(service: Service, *, now: datetime, deliver: bool = True) -> DeliveryPass | None:
    """Record what each subscription is owed and (with `deliver`) attempt what is due.

    Returns None when another server is doing a pass (it holds the lock).

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    with try_exclusive(service.store, LOCK_NAME) as taken:
        if not taken:
            return None
        prepare(service)
        done = DeliveryPass(notified=collect(service, now=now))
        if deliver:
            done.delivered = deliver_due(service, now=now)
        return done


def deliveries_document(service: Service) -> dict[str, Any]:
    """How this server delivers: `{"enabled", "every_seconds", "note"}` (the answer of the
    subscription routes), so that a subscriber learns when nothing would be sent."""
    every = service.config.delivery_seconds
    if every > 0:
        note = f"this server records and sends notifications every {every:g} seconds"
    else:
        note = (
            "this server sends no notifications (started without deliveries: "
            "`verifier serve --notify-interval` above 0); subscriptions are recorded and "
            "another server of the same database may send them"
        )
    return {"enabled": every > 0, "every_seconds": every, "note": note}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: the event goes to the configured URL and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def deliver(notification: Notification, secret: str, *, timestamp: int) -> Attempt:
    """POST the notification, signed at `timestamp`; a 2xx answer delivers it.

    A redirect is an error (never followed), as are other statuses, timeouts and refused
    connections; none raises.
    """
    try:
        url = check_notify_url(notification.url)
    except UsageError as exc:
        return Attempt(error=str(exc))
    body = notification.body()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked: http(s) only
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"verifier/{__version__}",
            SIGNATURE_HEADER: sign(secret, body, timestamp=timestamp),
            EVENT_HEADER: notification.event.value,
            DELIVERY_HEADER: str(notification.notification_id),
        },
    )
    try:
        with _OPENER.open(request, timeout=REQUEST_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        exc.close()
        if 300 <= status < 400:
            return Attempt(status=status, error="answered with a redirect, which is not followed")
        return Attempt(status=status, error=f"answered {status}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(error=f"could not deliver: {reason}"[:MAX_TEXT])
    if 200 <= status < 300:
        return Attempt(status=status, delivered=True)
    return Attempt(status=status, error=f"answered {status}")
