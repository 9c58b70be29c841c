"""Outgoing notifications (pure): events, their signature, the retry schedule.

Signed JSON webhooks on decision changes, new critical findings and waivers expiring soon. What
is owed to which URL, and each attempt, is kept by `verifier.store.notifications`; the server's
upkeep pass collects and delivers them (`verifier.service.notify`). docs/service.md
("Notifications") is the user's description, with how a receiver verifies a signature.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from verifier import __version__
from verifier.errors import UsageError

#: The header with the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`.
SIGNATURE_HEADER = "X-Verifier-Signature"
#: The header naming the event, and the one with the delivery's id (the same on each retry).
EVENT_HEADER = "X-Verifier-Event"
DELIVERY_HEADER = "X-Verifier-Delivery"
#: Shortest secret accepted (the signature is only as strong as the secret).
MIN_SECRET_LENGTH = 16
#: Attempts before a delivery is given up (failed); the waits between them double.
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 30.0
MAX_RETRY_SECONDS = 3600.0
#: Seconds one attempt may take.
REQUEST_TIMEOUT = 10.0
#: How old a signature a receiver should accept (`verify_signature`), against replays.
SIGNATURE_TOLERANCE_SECONDS = 300
#: Most deliveries attempted in one pass, and most findings listed in one notification.
MAX_DELIVERIES_PER_PASS = 100
MAX_FINDINGS_LISTED = 50
#: Longest string of a finding copied into a notification.
MAX_TEXT = 500
_LOOPBACK_NAMES = frozenset({"localhost"})


class NotificationEvent(enum.StrEnum):
    """What a notification is about."""

    DECISION_CHANGED = "decision.changed"
    CRITICAL_FINDINGS = "finding.critical"
    WAIVER_EXPIRING = "waiver.expiring"


class DeliveryStatus(enum.StrEnum):
    """Where a notification's delivery stands."""

    PENDING = "pending"  # not yet delivered; tried again at `next_attempt_at`
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # MAX_ATTEMPTS attempts, none answered 2xx: given up


@dataclass(frozen=True)
class Notification:
    """One event owed to one URL, and how its delivery went."""

    notification_id: int
    url: str
    event: NotificationEvent
    event_key: str
    data: dict[str, Any]
    created_at: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str | None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None

    def body(self) -> bytes:
        """The JSON body sent (the same on every attempt; the signature carries the time)."""
        document = {
            "id": self.notification_id,
            "event": self.event.value,
            "created_at": self.created_at,
            "data": self.data,
            "sender": f"verifier/{__version__}",
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    def document(self) -> dict[str, Any]:
        """The delivery log's JSON form (`GET /api/v1/notifications`): the URL's origin only,
        since a webhook URL often carries a secret in its path or query."""
        return {
            "id": self.notification_id,
            "target": url_origin(self.url),
            "event": self.event.value,
            "key": self.event_key,
            "created_at": self.created_at,
            "status": self.status.value,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
            "data": self.data,
        }


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt got: an HTTP status, or an error without one."""

    status: int | None = None
    error: str | None = None
    delivered: bool = field(default=False)


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_notify_url(url: str) -> str:
    """`url` if it is an acceptable notification target.

    Raises:
        UsageError: Not http(s), has credentials or a fragment, or is plain http to a host
            that is not a loopback address (events would cross the network in clear).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--notify-url {url}: give an http(s)://host[:port]/path address")
    if parts.username or parts.password or parts.fragment:
        raise UsageError(f"--notify-url {url}: no credentials or fragment in the address")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--notify-url {url}: use https (plain http is accepted for loopback addresses only)"
        )
    return url


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of `url` (what the delivery log shows of it)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def check_secret(secret: str | None) -> str:
    """The signing secret, if long enough.

    Raises:
        UsageError: None, or shorter than MIN_SECRET_LENGTH: notifications are never sent
            unsigned.
    """
    if secret is None or len(secret) < MIN_SECRET_LENGTH:
        raise UsageError(
            f"notifications need VERIFIER_NOTIFY_SECRET, at least {MIN_SECRET_LENGTH} "
            "characters, to sign them with (they are never sent unsigned)"
        )
    return secret


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The signature header's value: `t=<timestamp>,v1=<hex HMAC-SHA256 of "t." + body>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    now: float,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks (pure): the header signs this body with `secret`, in constant
    time, at a time within `tolerance` seconds of `now` (an old delivery replayed fails)."""
    if not header:
        return False
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp=timestamp).partition(",v1=")[2]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def retry_delay(attempts: int) -> float:
    """Seconds to wait after `attempts` failed attempts: 30, 60, 120, ... at most an hour."""
    return float(min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))
