"""Outgoing notifications, sent: collect what each URL is owed, deliver what is due (HTTP).

The server's upkeep pass calls `collect` and `deliver_due` (`verifier.service.upkeep`); the
events, their signature and the retry schedule are in `verifier.notifications`.
"""

from __future__ import annotations

import urllib.error
import urllib.request
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
    check_notify_url,
    sign,
)
from verifier.store.notifications import NotificationRecords

if TYPE_CHECKING:
    from verifier.service.core import Service


def expiring_waivers(service: Service, *, today: date) -> list[dict[str, Any]]:
    """The waivers of the server's policy (any environment) that expire within
    `notify_waiver_days` days of `today`, and have not expired yet, by id."""
    horizon = today + timedelta(days=service.config.notify_waiver_days)
    found: dict[str, dict[str, Any]] = {}
    for policy in service.policies.each():
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
    finding, before the pass records any: it is told of what happens from now on.

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    if service.config.notify_urls:
        NotificationRecords(service.store).start_cursors(service.config.notify_urls)


def collect(service: Service, *, now: datetime) -> int:
    """Record what each configured URL is owed now; returns how many notifications.

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    urls = service.config.notify_urls
    if not urls:
        return 0
    records = NotificationRecords(service.store)
    waivers = expiring_waivers(service, today=now.astimezone(UTC).date())
    return records.collect(urls, expiring_waivers=waivers, now=now)


def deliver_due(service: Service, *, now: datetime) -> list[tuple[Notification, Attempt]]:
    """Attempt every notification due at `now` (at most MAX_DELIVERIES_PER_PASS), recording
    each attempt; returns them.

    Raises:
        StoreError: The database cannot be reached or refused the write.
    """
    secret = service.config.notify_secret
    if not service.config.notify_urls or secret is None:
        return []
    records = NotificationRecords(service.store)
    done = []
    for notification in records.due(now=now, limit=MAX_DELIVERIES_PER_PASS):
        attempt = deliver(notification, secret, timestamp=int(now.timestamp()))
        records.record_attempt(notification.notification_id, attempt, now=now)
        done.append((notification, attempt))
    return done


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
