"""Value types of the service: roles, tokens, audit events, scan jobs (imports nothing of ours)."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Largest integer a database keeps in a row id, offset or limit (a signed 64-bit integer): a
#: larger one in a request is refused as invalid, before the database would choke on it.
MAX_ROW_ID = 2**63 - 1


class Role(enum.StrEnum):
    """What a token may do; each role may do everything the roles before it may."""

    VIEWER = "viewer"
    SCANNER = "scanner"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in the order viewer < scanner < approver < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """Whether a token of this role may call a route that needs `needed`."""
        return self.rank >= needed.rank


class GateDecision(enum.StrEnum):
    """The gate's answer: a recorded allow or deny, or unknown (never scanned), never allowed."""

    ALLOW = "allow"
    DENY = "deny"
    UNKNOWN = "unknown"


class JobStatus(enum.StrEnum):
    """Where a scan job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


#: Re-scans one upkeep pass queues by default (`verifier serve --rescan-per-pass`): a few
#: scans of kept bytes every pass, so that an upgrade reaches the estate in the background.
RESCAN_PER_PASS = 10


class RescanState(enum.StrEnum):
    """Where the re-scan of a model an older verifier version scanned stands
    (`GET /api/v1/rescans`)."""

    #: Its bytes are kept: a coming upkeep pass queues it (`rescan_per_pass` a pass).
    WAITING = "waiting"
    #: Not queued: its bytes are not all kept here or in the shared store (the reason says).
    HELD = "held"
    #: Its re-scan job is queued or running.
    QUEUED = "queued"
    #: Its re-scan job failed (the reason is the job's error): the scan before stands, and
    #: this version does not ask again.
    FAILED = "failed"
    #: Re-scanned by the running version.
    DONE = "done"


class RescanCause(enum.StrEnum):
    """Why a recorded model needs a re-scan."""

    #: Its newest scan was made by an older verifier version (`scanned_by_older`).
    SCANNER = "scanner"
    #: Its newest scan is complete and recorded a weight fingerprint of an older version,
    #: which no attribution compares (docs/lineage.md, "After an upgrade").
    FINGERPRINT = "fingerprint"
    #: Its newest scan is complete, its fingerprint of the current version, and its lineage
    #: could not compare a registered base fingerprinted only by an older version then, whose
    #: own newest scan has since recorded a fingerprint of the current version
    #: (`verifier.service.rescans.rescan_need`; docs/lineage.md, "After an upgrade").
    LINEAGE = "lineage"


#: What the actor of a re-scan by a new scanner version starts with (see `Rescanner`).
RESCAN_ACTOR_PREFIX = "rescan:"
_FROM_HUB = ":hub"


@dataclass(frozen=True)
class Rescanner:
    """Who asks for a re-scan after a scanner upgrade, as the job's actor names it:
    `rescan:<version>` reads only the bytes kept of the model (this host's blob folder, the
    shared blob store) and asks the Hub nothing; `rescan:<version>:hub` (the operator's
    `--rescan-from-hub`) fetches from the Hub what is not kept. A version never holds `:`."""

    version: str
    from_hub: bool = False

    @property
    def actor(self) -> str:
        """The actor recorded with the job and with the change of decision it makes."""
        return f"{RESCAN_ACTOR_PREFIX}{self.version}{_FROM_HUB if self.from_hub else ''}"

    @classmethod
    def parse(cls, actor: str) -> Rescanner | None:
        """The re-scanner an actor names, or None for any other actor."""
        if not actor.startswith(RESCAN_ACTOR_PREFIX):
            return None
        rest = actor.removeprefix(RESCAN_ACTOR_PREFIX)
        if rest.endswith(_FROM_HUB):
            return cls(rest.removesuffix(_FROM_HUB), from_hub=True)
        return cls(rest)


class AuditAction(enum.StrEnum):
    """The state changes the audit log records."""

    TOKEN_CREATED = "token.created"  # noqa: S105 - an action name, not a secret
    TOKEN_REVOKED = "token.revoked"  # noqa: S105 - an action name, not a secret
    SCAN_REQUESTED = "scan.requested"
    BAN_ADDED = "ban.added"
    BAN_LIFTED = "ban.lifted"
    POLICY_RELOADED = "policy.reloaded"
    NOTIFICATION_SUBSCRIBED = "notification.subscribed"
    NOTIFICATION_UNSUBSCRIBED = "notification.unsubscribed"
    WATCH_ADDED = "watch.added"
    WAIVER_ADDED = "waiver.added"
    WAIVER_REVOKED = "waiver.revoked"
    APPROVAL_RECORDED = "approval.recorded"
    BLOBS_COLLECTED = "blobs.collected"


@dataclass(frozen=True)
class ApiToken:
    """A named API token; only the SHA-256 of its secret is ever stored."""

    name: str
    role: Role
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        """Whether the token still authenticates."""
        return self.revoked_at is None


@dataclass(frozen=True)
class AuditEvent:
    """One state change: who did what to which subject, when (append-only)."""

    event_id: int
    at: str
    actor: str
    action: AuditAction
    subject: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScanJob:
    """A scan asked of the service, and the recorded scan that answers it once done."""

    job_id: str
    target: str
    policy_name: str
    policy_digest: str
    environment: str | None
    status: JobStatus
    requested_by: str
    created_at: str
    updated_at: str
    scan_id: str | None = None
    error: str | None = None

    @property
    def open(self) -> bool:
        """Whether the job is queued or running."""
        return self.status in (JobStatus.QUEUED, JobStatus.RUNNING)

    @property
    def request_key(self) -> str:
        """See `request_key`: the database holds at most one open job per key."""
        return request_key(
            self.target, policy_digest=self.policy_digest, environment=self.environment
        )


def request_key(target: str, *, policy_digest: str, environment: str | None) -> str:
    """Hex SHA-256 of what makes two scan requests the same: the target, the policy digest
    and the environment (JSON, so that no two triples share a key)."""
    same = json.dumps([target, policy_digest, environment])
    return hashlib.sha256(same.encode()).hexdigest()
