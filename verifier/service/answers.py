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
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from verifier.bans import BanKind, Relation
from verifier.model import Decision, ScanStatus, Severity
from verifier.notifications import DeliveryStatus, NotificationEvent
from verifier.redecide import Cause
from verifier.service.model import AuditAction, GateDecision, JobStatus

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


class ScanAccepted(Answer):
    """The answer to a scan request."""

    id: str = Field(description="The job's id: GET /api/v1/scans/{id}.")
    status: JobStatus
    scan_id: str | None = Field(description="The recorded scan, once there is one.")


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


class BanList(Answer):
    """`GET /api/v1/bans`."""

    bans: list[BanEntry]


class DecisionChanges(Answer):
    """`GET /api/v1/decision-changes`."""

    changes: list[DecisionChange]


class Reached(Answer):
    """A recorded model a ban would reach, and how."""

    subject: str
    scan_id: str
    relation: Relation
    path: list[str]


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


class WatchList(Answer):
    """`GET /api/v1/watches`."""

    watches: list[WatchEntry]


class HookJob(Answer):
    """A scan a Hub webhook queued."""

    watch: int
    target: str
    job: str


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


class BlobsCollected(Answer):
    """`POST /api/v1/blobs/gc`: what `verifier blobs gc --format json` prints, without
    `schema_version`."""

    dry_run: bool
    stores: list[CollectedStore]
