"""Routes of waivers and approvals: record a waiver, list waivers, countersign a model."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import datetime as dt
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from verifier.errors import ConflictError, NotApprovableError, UsageError
from verifier.evidence import load_facts
from verifier.evidence.approval import approval_bundle, approval_record
from verifier.policy.codec import encode
from verifier.policy.schema import FILE_SUBJECT, Waiver, compile_waiver, waiver_conflict
from verifier.redecide import Cause, Redecision, preview, redecide
from verifier.service.answers import ApprovalAnswer, WaiverAdded, WaiverList, WaiverRevoked
from verifier.service.core import Service
from verifier.service.decisions import PolicySet, gate
from verifier.service.model import ApiToken, GateDecision, Role
from verifier.service.targets import MAX_TARGET_LENGTH, require_pinned
from verifier.store.waivers import WaiverRecords

#: What a waiver id may be (as in a policy file).
WAIVER_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
#: Longest ticket reference and justification a waiver keeps.
MAX_TICKET = 256
MAX_JUSTIFICATION = 4_000
_EXAMPLE_SUBJECT = "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567"


class WaiverRequest(BaseModel):
    """`POST /api/v1/waivers`: a waiver as a waivers file holds it, without `approved_by`
    (the approver is the token that records it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "acme-tiny-pickle",
                    "rule": "no-high-or-critical-findings",
                    "subject": _EXAMPLE_SUBJECT,
                    "expires": "2027-03-31",
                    "ticket": "jira:sec-1234",
                    "justification": "reviewed the pickle opcodes by hand; no callables",
                }
            ]
        },
    )

    id: str = Field(max_length=128, description="New waiver id: [a-z0-9][a-z0-9._-]*")
    rule: str = Field(max_length=128, description="The id of the rule waived.")
    subject: str = Field(
        max_length=MAX_TARGET_LENGTH,
        description="hf://namespace/name@<40-hex commit> or sha256:<64-hex file digest>",
    )
    expires: dt.date = Field(description="Last day the waiver applies (required).")
    ticket: str = Field(max_length=MAX_TICKET)
    justification: str = Field(max_length=MAX_JUSTIFICATION)


class RevocationRequest(BaseModel):
    """`POST /api/v1/waivers/{waiver_id}/revoke`: why the waiver ends now."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "the pickle was replaced by safetensors"}]},
    )

    reason: str = Field(min_length=1, max_length=MAX_JUSTIFICATION)


class ApprovalRequest(BaseModel):
    """`POST /api/v1/approvals`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"target": _EXAMPLE_SUBJECT, "environment": None}]},
    )

    target: str = Field(
        max_length=MAX_TARGET_LENGTH, description="hf://namespace/name@<40-hex commit>"
    )
    environment: str | None = Field(
        default=None, max_length=64, description="Environment of the policy [its default]."
    )


def _waiver(request: WaiverRequest, *, approver: str, today: dt.date) -> Waiver:
    """The waiver asked for, checked as a waivers file's would be.

    Raises:
        UsageError: A field is invalid, or the waiver has already expired.
    """
    if request.expires < today:
        raise UsageError(f"expires: {request.expires} is in the past; a waiver must expire later")
    try:
        return Waiver(
            id=request.id,
            rule=request.rule,
            subject=request.subject,
            expires=request.expires,
            approved_by=approver,
            ticket=request.ticket,
            justification=request.justification,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise UsageError(f"{where}: {first.get('msg', 'is not valid')}") from None


def _reached(service: Service, policies: PolicySet, waiver: Waiver) -> set[str]:
    """The recorded models a waiver concerns: the model it names, or those holding the file."""
    if not FILE_SUBJECT.match(waiver.subject):
        return {waiver.subject}
    from verifier.bans import BanKind, proposed_ban

    at = dt.datetime.now(dt.UTC).isoformat()
    blob = proposed_ban(BanKind.BLOB, waiver.subject, by="waiver", at=at)
    policy = policies.for_environment(None)
    return {hit.model.key for hit in preview(service.store, blob, policy=policy)}


def _redecide(
    service: Service, policies: PolicySet, waiver: Waiver, *, actor: str
) -> list[Redecision]:
    only = _reached(service, policies, waiver)
    if not only:
        return []
    done: list[Redecision] = []
    for policy in policies.each():
        done += redecide(
            service.store,
            policy,
            actor=actor,
            cause=Cause.WAIVER,
            only=only,
            detail={"waiver": waiver.id},
        )
    return done


def _listed(policies: PolicySet, records: WaiverRecords, today: dt.date) -> list[dict[str, Any]]:
    recorded = {r.waiver.id: r for r in records.waivers()}
    listed = []
    for waiver in policies.for_environment(None).waivers:
        entry = recorded.get(waiver.id)
        document: dict[str, Any] = {
            **encode(waiver),
            "source": "service" if entry is not None else "policy",
            "created_at": entry.created_at if entry is not None else None,
            "created_by": entry.created_by if entry is not None else None,
            "expired": waiver.expires < today,
        }
        listed.append(document)
    return listed


def waiver_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The waiver and approval routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    viewer, approver = require(Role.VIEWER), require(Role.APPROVER)
    records = WaiverRecords(service.store)

    @router.post(
        "/api/v1/waivers",
        status_code=201,
        tags=["waivers"],
        response_model=WaiverAdded,
        responses={409: {"description": "A waiver with this id exists."}},
    )
    def add_waiver(request: WaiverRequest, token: Annotated[ApiToken, approver]) -> dict[str, Any]:
        """Record a waiver (approver; `expires` required, not in the past). It joins the
        policy's own waivers, in every environment; what it concerns is decided again."""
        actor = f"token:{token.name}"
        waiver = _waiver(request, approver=actor, today=dt.datetime.now(dt.UTC).date())
        policies = service.policies.current(service.store)
        conflict = waiver_conflict(policies.for_environment(None).document, compile_waiver(waiver))
        if conflict is not None:
            field, problem = conflict
            if field == "id":
                raise ConflictError(f"id: {problem}")
            raise UsageError(f"{field}: {problem}")
        recorded = records.add_waiver(waiver, actor=actor)
        policies = service.policies.current(service.store)
        redecided = _redecide(service, policies, waiver, actor=actor)
        return {
            "waiver": recorded.document(),
            "policy_digest": policies.digest,
            "affected": [item.document() for item in redecided],
        }

    @router.post(
        "/api/v1/waivers/{waiver_id}/revoke",
        tags=["waivers"],
        response_model=WaiverRevoked,
        responses={
            404: {"description": "No waiver with this id was recorded through the service."},
            409: {"description": "The waiver was revoked already."},
        },
    )
    def revoke_waiver(
        waiver_id: Annotated[str, PathParam(max_length=128, pattern=WAIVER_ID_PATTERN)],
        request: RevocationRequest,
        token: Annotated[ApiToken, approver],
    ) -> dict[str, Any]:
        """End a waiver recorded through the service before its expiry (approver). The
        revocation is recorded beside the waiver (neither is ever deleted) and what the waiver
        concerned is decided again without it. Waivers of the policy file or its waivers files
        end when they are removed there."""
        actor = f"token:{token.name}"
        recorded = records.revoke_waiver(waiver_id, reason=request.reason, actor=actor)
        policies = service.policies.current(service.store)
        redecided = _redecide(service, policies, recorded.waiver, actor=actor)
        return {
            "waiver": recorded.document(),
            "reason": request.reason,
            "revoked_by": actor,
            "policy_digest": policies.digest,
            "affected": [item.document() for item in redecided],
        }

    @router.get("/api/v1/waivers", tags=["waivers"], response_model=WaiverList)
    def list_waivers(
        _: Annotated[ApiToken, viewer], expired: Annotated[bool, Query()] = True
    ) -> dict[str, Any]:
        """Every waiver of the server's policy: its file's, its waivers files', and those
        recorded through the service (`source`), each with whether it has expired."""
        policies = service.policies.current(service.store)
        listed = _listed(policies, records, dt.datetime.now(dt.UTC).date())
        if not expired:
            listed = [entry for entry in listed if not entry["expired"]]
        return {"policy": policies.name, "policy_digest": policies.digest, "waivers": listed}

    @router.post(
        "/api/v1/approvals",
        status_code=201,
        tags=["approvals"],
        response_model=ApprovalAnswer,
        responses={
            404: {"description": "No scan of the model is recorded."},
            409: {"description": "The model is not allowed, or the server has no approval key."},
        },
    )
    def approve(request: ApprovalRequest, token: Annotated[ApiToken, approver]) -> dict[str, Any]:
        """Countersign an allowed model (approver): the OpenSSF model signing bundle
        `verifier approve` writes, signed with the server's approval key, recorded."""
        key = service.approval_key
        if key is None:
            raise ConflictError(
                "this server has no approval key: start it with --approval-key PATH"
            )
        subject = require_pinned(request.target)
        policies = service.policies.current(service.store)
        answer = gate(service.store, policies, subject, environment=request.environment)
        if answer.decision is not GateDecision.ALLOW:
            raise NotApprovableError(
                f"{subject} is {answer.decision.value} under policy {policies.name} in "
                f"environment {answer.environment or '(default)'}: only an allowed model is "
                "approved"
            )
        assert answer.scan_id is not None  # an allow always names its scan
        publishers = policies.for_environment(request.environment).publishers
        facts = load_facts(service.store, answer.scan_id, publishers=publishers)
        actor = f"token:{token.name}"
        bundle = approval_bundle(facts, key)
        data = (json.dumps(bundle, indent=2) + "\n").encode()
        at = dt.datetime.now(dt.UTC)
        record = approval_record(bundle, data, output=f"(returned to {actor})", at=at)
        records.record_approval(answer.scan_id, record, subject=subject, actor=actor)
        return {
            "subject": subject,
            "scan_id": answer.scan_id,
            "environment": answer.environment,
            "approved_at": record.approved_at,
            "key_fingerprint": record.key_fingerprint,
            "bundle_sha256": record.bundle_sha256,
            "files": record.files,
            "bundle": bundle,
        }

    return router
