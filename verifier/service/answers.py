"""The exact answers of the HTTP API (version 1): one pydantic model per success body.

Every model forbids extra fields, so its JSON Schema in `/openapi.json` says
`additionalProperties: false`, and a route that returns a field its model does not name fails
(500) instead of sending an undocumented answer. Timestamps stay strings (the service writes
ISO 8601 and nothing here reformats them). The scan document a job or a model carries is not
modelled twice: it is the shipped JSON Schema (`verifier/schemas/scan.schema.json` and the facts
schema it uses), placed in the OpenAPI document's components by `scan_document_components`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from importlib.resources import files
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from verifier.bans import BanKind, Relation
from verifier.model import Decision, ScanStatus, Severity
from verifier.notifications import DeliveryStatus, NotificationEvent
from verifier.redecide import Cause
from verifier.service.model import (
    AuditAction,
    GateDecision,
    JobStatus,
    RescanCause,
    RescanState,
)

#: The component that holds one scan document (`$defs.scan` of the shipped scan schema).
SCAN_DOCUMENT = "ScanDocument"
#: Components for the facts schema's definitions are named with this prefix.
FACTS_PREFIX = "facts."
_SCAN_REF = {"$ref": f"#/components/schemas/{SCAN_DOCUMENT}"}

# `allOf` around the `$ref`: pydantic resolves a bare `$ref` that has sibling keys (the field's
# title) against its own definitions, which do not hold the shipped schema.
ScanDocument = Annotated[dict[str, Any], WithJsonSchema({"allOf": [_SCAN_REF]})]
"""What `verifier scan --format json` prints for one target (the shipped JSON Schema)."""
MaybeScanDocument = Annotated[
    dict[str, Any] | None, WithJsonSchema({"anyOf": [_SCAN_REF, {"type": "null"}]})
]
#: A free-form JSON object (the detail of an event, the data of a notification).
JsonObject = dict[str, Any]


#: Example answers by model name: `add_examples` puts them in the OpenAPI document (FastAPI
#: drops null values from what pydantic gives it, and an answer's nulls are part of it).
EXAMPLES: dict[str, dict[str, Any]] = {}
#: The policy digest the examples show.
_DIGEST = "9d1f" + "0" * 60
_Model = TypeVar("_Model", bound=type[BaseModel])


def example(document: dict[str, Any]) -> Callable[[_Model], _Model]:
    """Record `document` as the example of the decorated answer (a test validates it)."""

    def record(model: _Model) -> _Model:
        EXAMPLES[model.__name__] = document
        return model

    return record


def add_examples(schemas: dict[str, Any]) -> None:
    """Put each answer's example under its component in an OpenAPI document's schemas."""
    for name, document in EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [document]


class Answer(BaseModel):
    """Base of the answers: no field beside those named."""

    model_config = ConfigDict(extra="forbid")


class Reason(Answer):
    """A rule that fired (as in the scan document's `policy.reasons`)."""

    rule_id: str
    effect: str = Field(description="allow, deny or warn.")
    severity: Severity
    message: str
    evidence: list[str]
    waived_by: str | None


class WaiverUse(Answer):
    """A waiver that concerned the subject: applied, expired or unused."""

    id: str
    rule: str
    subject: str
    status: str
    expires: str
    approved_by: str
    ticket: str


@example(
    {
        "decision": "deny",
        "target": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
        "environment": "production",
        "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
        "policy": "default",
        "policy_digest": _DIGEST,
        "mode": "enforce",
        "status": "complete",
        "reasons": [
            {
                "rule_id": "no-high-or-critical-findings",
                "effect": "deny",
                "severity": "critical",
                "message": "model.pkl: pickle calls os.system",
                "evidence": ["model.pkl"],
                "waived_by": None,
            }
        ],
        "waivers": [],
    }
)
class DecisionAnswer(Answer):
    """`GET /api/v1/decision` (documents the answer; `GateAnswer.document` writes it)."""

    decision: GateDecision
    target: str
    environment: str | None
    scan_id: str | None = Field(description="The recorded scan that answers; null: unknown.")
    policy: str
    policy_digest: str
    mode: str
    status: str | None = Field(description="complete or incomplete; null: unknown.")
    reasons: list[Reason]
    waivers: list[WaiverUse]


@example({"id": "6c1f0e5b9d2a4c7e8f1a3b5c7d9e0f12", "status": "queued", "scan_id": None})
class ScanAccepted(Answer):
    """The answer to a scan request."""

    id: str = Field(description="The job's id: GET /api/v1/scans/{id}.")
    status: JobStatus
    scan_id: str | None = Field(description="The recorded scan, once there is one.")


@example(
    {
        "id": "6c1f0e5b9d2a4c7e8f1a3b5c7d9e0f12",
        "status": "running",
        "target": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
        "policy": "default",
        "policy_digest": _DIGEST,
        "environment": None,
        "scan_id": None,
        "error": None,
        "created_at": "2026-12-04T21:07:13.412907+00:00",
        "updated_at": "2026-12-04T21:07:13.412907+00:00",
        "result": None,
    }
)
class ScanJobAnswer(Answer):
    """`GET /api/v1/scans/{id}`: the job, and its scan document once complete."""

    id: str
    status: JobStatus
    target: str
    policy: str
    policy_digest: str
    environment: str | None
    scan_id: str | None
    error: str | None = Field(description="Why a failed job failed (one line).")
    created_at: str
    updated_at: str
    #: Once complete: what `verifier scan --format json` prints, decided under the job's
    #: policy and environment; else null.
    result: MaybeScanDocument


class AdmissionStatus(Answer):
    """The status Kubernetes shows with a denial."""

    code: Literal[200, 403]
    message: str


class AdmissionResponse(Answer):
    """`response` of an AdmissionReview answer."""

    uid: str
    allowed: bool
    status: AdmissionStatus
    warnings: list[str] = Field(
        default_factory=list, description="Present only when there is a warning."
    )


@example(
    {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "allowed": False,
            "status": {
                "code": 403,
                "message": "denied by verifier: spec.predictor.model.storageUri: hf://acme/tiny is "
                "not pinned to a commit: use hf://acme/tiny:<40-hex commit>",
            },
        },
    }
)
class AdmissionReviewAnswer(Answer):
    """An `admission.k8s.io/v1` AdmissionReview carrying the response."""

    apiVersion: Literal["admission.k8s.io/v1"]
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


class Publisher(Answer):
    """A model's publisher, as the publisher registry knows it."""

    namespace: str
    known: bool
    legal_entity: str | None
    jurisdiction: str | None


class FindingsBySeverity(Answer):
    """Findings of a scan, counted by severity."""

    critical: int = Field(ge=0)
    high: int = Field(ge=0)
    medium: int = Field(ge=0)
    low: int = Field(ge=0)
    info: int = Field(ge=0)


class EnvironmentDecision(Answer):
    """A model's recorded decision in one environment (null: none recorded)."""

    environment: str | None
    decision: Decision | None


class InventoryModel(Answer):
    """One model@commit of the inventory."""

    subject: str
    repo_id: str
    commit: str
    publisher: Publisher
    scan_id: str
    scanned_at: str
    status: ScanStatus
    decision: Decision
    policy: str
    policy_digest: str
    environment: str | None
    findings: int = Field(ge=0)
    findings_by_severity: FindingsBySeverity
    decisions: list[EnvironmentDecision]
    signature: str | None = Field(description="The newest signature check's status.")


@example(
    {
        "models": [
            {
                "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "repo_id": "acme/tiny",
                "commit": "0123456789abcdef0123456789abcdef01234567",
                "publisher": {
                    "namespace": "acme",
                    "known": True,
                    "legal_entity": "Acme Corp.",
                    "jurisdiction": "US",
                },
                "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
                "scanned_at": "2026-12-04T21:07:13.412907+00:00",
                "status": "complete",
                "decision": "allow",
                "policy": "default",
                "policy_digest": _DIGEST,
                "environment": None,
                "findings": 1,
                "findings_by_severity": {
                    "critical": 0,
                    "high": 0,
                    "medium": 0,
                    "low": 1,
                    "info": 0,
                },
                "decisions": [{"environment": "production", "decision": "allow"}],
                "signature": "absent",
            }
        ],
        "limit": 100,
        "offset": 0,
    }
)
class Inventory(Answer):
    """`GET /api/v1/models`."""

    models: list[InventoryModel]
    limit: int
    offset: int


class RecordedScan(Answer):
    """One recorded scan of a model@commit."""

    scan_id: str
    started_at: str
    status: ScanStatus


class DecisionChange(Answer):
    """A change of a recorded model's decision, and its cause."""

    id: int
    at: str
    scan_id: str
    subject: str
    policy: str
    policy_digest: str
    environment: str | None
    previous: Decision | None
    decision: Decision
    cause: str
    detail: JsonObject
    actor: str


class ModelRecord(Answer):
    """`GET /api/v1/models/{id}`."""

    subject: str
    #: The newest recorded scan's document.
    scan: ScanDocument
    decisions: list[DecisionAnswer] = Field(description="The gate's answer per environment.")
    scans: list[RecordedScan]
    changes: list[DecisionChange]


class AuditEntry(Answer):
    """One state change: who did what, when."""

    id: int
    at: str
    actor: str
    action: AuditAction
    subject: str
    detail: JsonObject


@example(
    {
        "events": [
            {
                "id": 42,
                "at": "2026-12-04T21:07:13.412907+00:00",
                "actor": "token:ci-main",
                "action": "scan.requested",
                "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "detail": {
                    "job": "6c1f0e5b9d2a4c7e8f1a3b5c7d9e0f12",
                    "policy_digest": _DIGEST,
                    "environment": None,
                    "status": "queued",
                },
            }
        ]
    }
)
class AuditLog(Answer):
    """`GET /api/v1/audit`."""

    events: list[AuditEntry]


class NotificationEntry(Answer):
    """One outgoing notification and how its delivery went."""

    id: int
    target: str = Field(description="The URL's origin only.")
    event: NotificationEvent
    key: str
    created_at: str
    status: DeliveryStatus
    attempts: int = Field(ge=0)
    next_attempt_at: str | None
    last_status: int | None
    last_error: str | None
    delivered_at: str | None
    data: JsonObject


@example(
    {
        "notifications": [
            {
                "id": 7,
                "target": "https://hooks.example",
                "event": "decision.changed",
                "key": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b:production",
                "created_at": "2026-12-04T21:07:13.412907+00:00",
                "status": "delivered",
                "attempts": 1,
                "next_attempt_at": None,
                "last_status": 200,
                "last_error": None,
                "delivered_at": "2026-12-04T21:07:13.412907+00:00",
                "data": {
                    "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                    "previous": "allow",
                    "decision": "deny",
                    "cause": "ban",
                },
            }
        ]
    }
)
class NotificationLog(Answer):
    """`GET /api/v1/notifications`."""

    notifications: list[NotificationEntry]


class BanEntry(Answer):
    """A ban, in force or lifted."""

    id: int
    kind: BanKind
    value: str
    reason: str
    banned_by: str
    banned_at: str
    active: bool
    lifted_by: str | None
    lifted_at: str | None
    lift_reason: str | None


class Redecided(Answer):
    """A recorded model decided again."""

    subject: str
    scan_id: str
    environment: str | None
    decision: Decision
    previous: Decision | None
    recorded: bool
    changed: bool
    cause: Cause
    relation: Relation | None = Field(description="How the ban reaches the model.")
    path: list[str]


class BanLifted(Answer):
    """`POST /api/v1/bans/{id}/lift`."""

    ban: BanEntry
    affected: list[Redecided]


class BanAdded(BanLifted):
    """`POST /api/v1/bans`."""

    registered_bases: list[str] = Field(description="Scans registered as lineage bases.")


@example(
    {
        "bans": [
            {
                "id": 1,
                "kind": "model",
                "value": "acme/base",
                "reason": "front for a sanctioned entity",
                "banned_by": "token:secteam",
                "banned_at": "2026-12-04T21:07:13.412907+00:00",
                "active": True,
                "lifted_by": None,
                "lifted_at": None,
                "lift_reason": None,
            }
        ]
    }
)
class BanList(Answer):
    """`GET /api/v1/bans`."""

    bans: list[BanEntry]


@example(
    {
        "changes": [
            {
                "id": 3,
                "at": "2026-12-04T21:07:13.412907+00:00",
                "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
                "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "policy": "default",
                "policy_digest": _DIGEST,
                "environment": None,
                "previous": "allow",
                "decision": "deny",
                "cause": "ban",
                "detail": {"ban_id": 1},
                "actor": "token:secteam",
            }
        ]
    }
)
class DecisionChanges(Answer):
    """`GET /api/v1/decision-changes`."""

    changes: list[DecisionChange]


class Reached(Answer):
    """A recorded model a ban would reach, and how."""

    subject: str
    scan_id: str
    relation: Relation
    path: list[str]


@example(
    {
        "kind": "publisher",
        "value": "acme",
        "models": [
            {
                "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
                "relation": "named",
                "path": ["acme/tiny@0123456789abcdef0123456789abcdef01234567"],
            }
        ],
    }
)
class BlastRadius(Answer):
    """`GET /api/v1/blast-radius`."""

    kind: BanKind
    value: str
    models: list[Reached]


class WatchEntry(Answer):
    """A watched reference and the newest commit of it verified."""

    id: int
    target: str
    repo_id: str
    ref: str
    created_by: str
    created_at: str
    commit: str | None
    scan_id: str | None
    pending: list[str] = Field(description="Jobs still queued or running.")


class WatchAdded(Answer):
    """`POST /api/v1/watches`."""

    watch: WatchEntry
    job: str | None = Field(description="The job a new watch queued; null when watched already.")


@example(
    {
        "watches": [
            {
                "id": 1,
                "target": "hf://acme/tiny@main",
                "repo_id": "acme/tiny",
                "ref": "main",
                "created_by": "token:ci-main",
                "created_at": "2026-12-04T21:07:13.412907+00:00",
                "commit": "0123456789abcdef0123456789abcdef01234567",
                "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
                "pending": [],
            }
        ]
    }
)
class WatchList(Answer):
    """`GET /api/v1/watches`."""

    watches: list[WatchEntry]


class HookJob(Answer):
    """A scan a Hub webhook queued."""

    watch: int
    target: str
    job: str


@example(
    {
        "queued": [
            {
                "watch": 1,
                "target": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "job": "6c1f0e5b9d2a4c7e8f1a3b5c7d9e0f12",
            }
        ]
    }
)
class HookQueued(Answer):
    """`POST /api/v1/hooks/huggingface`."""

    queued: list[HookJob]


class RecordedWaiverEntry(Answer):
    """A waiver recorded through the service."""

    id: str
    rule: str
    subject: str
    expires: dt.date
    approved_by: str
    ticket: str
    justification: str
    created_at: str
    created_by: str


class WaiverAdded(Answer):
    """`POST /api/v1/waivers`."""

    waiver: RecordedWaiverEntry
    policy_digest: str
    affected: list[Redecided]


class WaiverRevoked(Answer):
    """`POST /api/v1/waivers/{waiver_id}/revoke`."""

    waiver: RecordedWaiverEntry
    reason: str
    revoked_by: str
    policy_digest: str = Field(description="The policy's digest without the waiver.")
    affected: list[Redecided]


class WaiverEntry(Answer):
    """A waiver of the server's policy, with where it comes from."""

    id: str
    rule: str
    subject: str
    expires: dt.date
    approved_by: str
    ticket: str
    justification: str
    source: Literal["service", "policy"]
    created_at: str | None
    created_by: str | None
    expired: bool


@example(
    {
        "policy": "default",
        "policy_digest": _DIGEST,
        "waivers": [
            {
                "id": "acme-tiny-pickle",
                "rule": "no-high-or-critical-findings",
                "subject": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "expires": "2027-03-31",
                "approved_by": "token:alice",
                "ticket": "jira:sec-1234",
                "justification": "reviewed the pickle opcodes by hand",
                "source": "service",
                "created_at": "2026-12-04T21:07:13.412907+00:00",
                "created_by": "token:alice",
                "expired": False,
            }
        ],
    }
)
class WaiverList(Answer):
    """`GET /api/v1/waivers`."""

    policy: str
    policy_digest: str
    waivers: list[WaiverEntry]


_BUNDLE_SCHEMA = {
    "type": "object",
    "description": "An OpenSSF model signing bundle (Sigstore bundle, DSSE envelope).",
    "required": ["mediaType", "verificationMaterial", "dsseEnvelope"],
    "properties": {
        "mediaType": {"type": "string"},
        "verificationMaterial": {"type": "object"},
        "dsseEnvelope": {"type": "object"},
    },
}


class ApprovalAnswer(Answer):
    """`POST /api/v1/approvals`."""

    subject: str
    scan_id: str
    environment: str | None
    approved_at: str
    key_fingerprint: str
    bundle_sha256: str
    files: int = Field(ge=0)
    bundle: Annotated[JsonObject, WithJsonSchema(_BUNDLE_SCHEMA)]


def _shipped(name: str) -> dict[str, Any]:
    text = (files("verifier") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _rewritten(node: Any, refs: dict[str, str]) -> Any:
    """`node` with each `$ref` named in `refs` pointing at its component instead."""
    if isinstance(node, dict):
        out = {key: _rewritten(value, refs) for key, value in node.items()}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = refs[out["$ref"]]
        return out
    if isinstance(node, list):
        return [_rewritten(item, refs) for item in node]
    return node


def scan_document_components() -> dict[str, dict[str, Any]]:
    """The OpenAPI components that hold the shipped scan document's schema: `ScanDocument`
    and one `facts.<name>` per definition of the facts schema, their `$ref`s rewritten to
    components (so that a client resolves them inside the document, offline).

    Raises:
        KeyError: A `$ref` of the shipped schemas names something unknown here (a bug).
    """
    scan, facts = _shipped("scan"), _shipped("facts")
    component = "#/components/schemas/"
    refs = {"#/$defs/scan": component + SCAN_DOCUMENT}
    for name in facts["$defs"]:
        refs[f"facts.schema.json#/$defs/{name}"] = component + FACTS_PREFIX + name
        refs[f"#/$defs/{name}"] = component + FACTS_PREFIX + name
    components = {SCAN_DOCUMENT: _rewritten(scan["$defs"]["scan"], refs)}
    for name, definition in facts["$defs"].items():
        components[FACTS_PREFIX + name] = _rewritten(definition, refs)
    return components


class KeptBlobs(Answer):
    """How many blobs a collection kept, by reason."""

    referenced: int = Field(ge=0, description="A recorded scan names it.")
    recent: int = Field(ge=0, description="Stored or used after the cutoff.")
    in_use: int = Field(ge=0, description="A scan job holds it.")


class GarbageBlob(Answer):
    """A blob no recorded scan names, stored before the cutoff, that no job held."""

    sha256: str = Field(pattern="^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    stored_at: str
    deleted: bool


class CollectedStore(Answer):
    """What one collection of one blob store found and did."""

    store: str = Field(description="The host's folder, or s3://bucket/prefix.")
    dry_run: bool
    older_than_seconds: int = Field(ge=0)
    cutoff: str
    examined: int = Field(ge=0)
    kept: KeptBlobs
    garbage_bytes: int = Field(ge=0)
    blobs: list[GarbageBlob]
    failures: list[str] = Field(description="Blobs that could not be deleted (one line each).")


@example(
    {
        "dry_run": True,
        "stores": [
            {
                "store": "/var/lib/verifier/blobs/sha256",
                "dry_run": True,
                "older_than_seconds": 604800,
                "cutoff": "2026-12-04T21:07:13.412907+00:00",
                "examined": 412,
                "kept": {"referenced": 409, "recent": 2, "in_use": 0},
                "garbage_bytes": 1048576,
                "blobs": [
                    {
                        "sha256": "ab" * 32,
                        "size": 1048576,
                        "stored_at": "2026-12-04T21:07:13.412907+00:00",
                        "deleted": False,
                    }
                ],
                "failures": [],
            }
        ],
    }
)
class BlobsCollected(Answer):
    """`POST /api/v1/blobs/gc`: what `verifier blobs gc --format json` prints, without
    `schema_version`."""

    dry_run: bool
    stores: list[CollectedStore]


class TokenEntry(Answer):
    """An API token (never its secret)."""

    name: str
    role: Literal["viewer", "scanner", "approver", "admin"]
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None


class TokenCreated(Answer):
    """`POST /api/v1/tokens`: the token and its secret, shown this once."""

    token: TokenEntry
    secret: str = Field(description="The bearer secret (vrf_...); it is not stored anywhere.")


class TokenList(Answer):
    """`GET /api/v1/tokens`."""

    tokens: list[TokenEntry]


class RescanItem(Answer):
    """The re-scan of one model an older verifier version scanned (or this one re-scanned)."""

    target: str
    state: RescanState = Field(
        description="waiting (kept: a coming pass queues it), held (not all kept: `reason`), "
        "queued (its job is queued or running), failed (its job failed: `reason`), done."
    )
    tool_version: str = Field(description="The verifier version of the model's newest scan.")
    scan_id: str = Field(description="The model's newest recorded scan.")
    job: str | None = Field(description="The re-scan job, once one was queued.")
    reason: str | None = Field(description="Why held (the files not kept) or failed.")
    causes: list[RescanCause] = Field(
        description="Why it needs a re-scan: `scanner` (an older verifier version scanned it), "
        "`fingerprint` (its weight fingerprint is of an older fingerprint version, compared "
        "with nothing), `lineage` (a registered base its scan could not compare, fingerprinted "
        "by an older version only then, has been fingerprinted again since); empty once done."
    )
    fingerprint_version: int | None = Field(
        description="The version of the weight fingerprint its newest scan recorded (null: none)."
    )
    registered_base: bool = Field(
        description="That fingerprint is a registered lineage base (re-scanned first)."
    )


@example(
    {
        "version": "0.2.0",
        "from_hub": False,
        "per_pass": 10,
        "examined": 2,
        "truncated": False,
        "rescans": [
            {
                "target": "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567",
                "state": "held",
                "tool_version": "0.1.0",
                "scan_id": "3f2a9c1e7b4d4e6f8a0b2c4d6e8f0a1b",
                "job": None,
                "reason": "1 declared file(s) not kept in this host's blob folder or the "
                "shared blob store: model.safetensors",
                "causes": ["scanner", "fingerprint"],
                "fingerprint_version": 2,
                "registered_base": True,
            },
            {
                "target": "hf://acme/other@89abcdef0123456789abcdef0123456789abcdef",
                "state": "queued",
                "tool_version": "0.1.0",
                "scan_id": "7b4d4e6f8a0b2c4d6e8f0a1b3f2a9c1e",
                "job": "6c1f0e5b9d2a4c7e8f1a3b5c7d9e0f12",
                "reason": None,
                "causes": ["scanner"],
                "fingerprint_version": None,
                "registered_base": False,
            },
        ],
    }
)
class RescanList(Answer):
    """`GET /api/v1/rescans`."""

    version: str = Field(description="The running verifier version (what is newer).")
    from_hub: bool = Field(description="Whether re-scans may fetch from the Hub.")
    per_pass: int = Field(ge=0, description="Re-scans queued per upkeep pass (0: none).")
    examined: int = Field(
        ge=0, description="Models examined: registered lineage bases first, then by target."
    )
    truncated: bool = Field(description="More models were left unexamined (raise `limit`).")
    rescans: list[RescanItem] = Field(description="Those examined (in `state`, when asked).")
