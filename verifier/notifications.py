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
from collections.abc import Collection, Iterable
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
MAX_SECRET_LENGTH = 256
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
#: Longest notification URL accepted.
MAX_URL = 2_000


class NotificationEvent(enum.StrEnum):
    """What a notification is about."""

    DECISION_CHANGED = "decision.changed"
    CRITICAL_FINDINGS = "finding.critical"
    WAIVER_EXPIRING = "waiver.expiring"


#: Most days ahead a subscription may ask to be told of expiring waivers.
MAX_WAIVER_DAYS = 365
#: Longest environment or publisher a subscription may filter on.
MAX_FILTER = 128


@dataclass(frozen=True)
class Subscription:
    """Where one kind of notification goes: a URL, the secret that signs for it, the events
    it is told of, and an optional filter. `subscription_id` None: the server's own
    `--notify-url` (configured by a flag, not recorded)."""

    subscription_id: int | None
    url: str
    #: What signs each delivery; never shown after the subscription is made.
    secret: str = field(repr=False)
    events: frozenset[NotificationEvent]
    #: Waivers expiring within this many days are told (`waiver.expiring`).
    waiver_days: int
    #: Only decision changes in this environment of the policy (None: every one).
    environment: str | None = None
    #: Only models (and waivers) of this Hub namespace (None: every one).
    publisher: str | None = None
    created_at: str | None = None
    created_by: str | None = None

    def wants(self, event: NotificationEvent, data: dict[str, Any]) -> bool:
        """Whether this subscription is told of `event` (pure): one of its events, and past its
        filter. Critical findings and waivers have no environment: the environment filter
        holds back only the decision changes of other environments."""
        if event not in self.events:
            return False
        if event is NotificationEvent.WAIVER_EXPIRING and int(data.get("days_left", 0)) > (
            self.waiver_days
        ):
            return False
        if (
            self.environment is not None
            and event is NotificationEvent.DECISION_CHANGED
            and data.get("environment") != self.environment
        ):
            return False
        return self.publisher is None or subject_publisher(data.get("subject")) == self.publisher

    def document(self) -> dict[str, Any]:
        """The JSON form (`GET /api/v1/notifications/subscriptions`): never the secret."""
        return {
            "id": self.subscription_id,
            "url": self.url,
            "events": sorted(event.value for event in self.events),
            "waiver_days": self.waiver_days,
            "environment": self.environment,
            "publisher": self.publisher,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "configured_by": "api" if self.subscription_id is not None else "flag",
        }


def subject_publisher(subject: Any) -> str | None:
    """The Hub namespace of `hf://namespace/name[@commit]` (None when it is not one)."""
    if not isinstance(subject, str) or not subject.startswith("hf://"):
        return None
    namespace, slash, _ = subject.removeprefix("hf://").partition("/")
    return namespace if slash and namespace else None


def check_events(names: Iterable[str]) -> frozenset[NotificationEvent]:
    """The events named, at least one.

    Raises:
        UsageError: None named, or a name that is not an event.
    """
    events = set()
    for name in names:
        try:
            events.add(NotificationEvent(name))
        except ValueError:
            known = ", ".join(e.value for e in NotificationEvent)
            raise UsageError(f"unknown event {name!r} (known: {known})") from None
    if not events:
        raise UsageError("name at least one event to be told of")
    return frozenset(events)


def check_filter(value: str | None, *, what: str) -> str | None:
    """A filter value (environment or publisher), or None.

    Raises:
        UsageError: Empty, too long, or not printable.
    """
    if value is None:
        return None
    if not value or len(value) > MAX_FILTER or not value.isprintable() or value != value.strip():
        raise UsageError(f"the {what} filter must be 1 to {MAX_FILTER} printable characters")
    return value


def check_waiver_days(days: int) -> int:
    """Days ahead to tell of expiring waivers.

    Raises:
        UsageError: Below 0 or above MAX_WAIVER_DAYS.
    """
    if not 0 <= days <= MAX_WAIVER_DAYS:
        raise UsageError(f"waiver days must be between 0 and {MAX_WAIVER_DAYS}")
    return days


def new_subscription(
    url: str,
    *,
    secret: str,
    events: Iterable[str],
    waiver_days: int,
    environment: str | None = None,
    publisher: str | None = None,
    environments: Collection[str] | None = None,
) -> Subscription:
    """A subscription to record, every value checked (pure). With `environments` (the
    server's policy's), the environment filter must name one of them.

    Raises:
        UsageError: A value is not acceptable (see the checks above).
    """
    environment = check_filter(environment, what="environment")
    if environment is not None and environments is not None and environment not in environments:
        known = ", ".join(sorted(environments)) or "none"
        raise UsageError(
            f"the policy has no environment {environment!r} to filter on (it has: {known})"
        )
    return Subscription(
        subscription_id=None,
        url=check_notify_url(url),
        secret=check_secret(secret, name="a subscription's secret"),
        events=check_events(events),
        waiver_days=check_waiver_days(waiver_days),
        environment=environment,
        publisher=check_filter(publisher, what="publisher"),
    )


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
        raise UsageError(f"notification URL {url}: give an http(s)://host[:port]/path address")
    if parts.username or parts.password or parts.fragment:
        raise UsageError(f"notification URL {url}: no credentials or fragment in the address")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"notification URL {url}: use https (plain http is accepted for loopback "
            "addresses only)"
        )
    if len(url) > MAX_URL:
        raise UsageError(f"notification URL: at most {MAX_URL} characters")
    return url


def url_origin(url: str) -> str:
    """`scheme://host[:port]` of `url` (what the delivery log shows of it)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def check_secret(secret: str | None, *, name: str = "VERIFIER_NOTIFY_SECRET") -> str:
    """The signing secret (`name` says where it comes from, for the message), if long enough.

    Raises:
        UsageError: None, shorter than MIN_SECRET_LENGTH (notifications are never sent
            unsigned), or longer than MAX_SECRET_LENGTH.
    """
    if secret is None or len(secret) < MIN_SECRET_LENGTH:
        raise UsageError(
            f"notifications need {name}, at least {MIN_SECRET_LENGTH} "
            "characters, to sign them with (they are never sent unsigned)"
        )
    if len(secret) > MAX_SECRET_LENGTH or not secret.isprintable():
        raise UsageError(f"{name}: at most {MAX_SECRET_LENGTH} printable characters")
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
