"""Routes of bans and blast radius: add, lift and list bans; what a ban would reach."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from verifier.bans import (
    MAX_REASON,
    Ban,
    BanKind,
    check_reason,
    normalise_ban_value,
    proposed_ban,
)
from verifier.errors import UsageError
from verifier.redecide import apply_ban_change, preview, register_banned_weights
from verifier.service.answers import BanAdded, BanLifted, BanList, BlastRadius, DecisionChanges
from verifier.service.core import Service
from verifier.service.model import MAX_ROW_ID, ApiToken, Role
from verifier.service.targets import MAX_TARGET_LENGTH
from verifier.store.bans import MAX_CHANGES, BanRecords

#: Longest ban value: a repo id with its commit, or a digest.
MAX_VALUE = 256


class BanRequest(BaseModel):
    """`POST /api/v1/bans`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"kind": "model", "value": "acme/base", "reason": "front for a sanctioned entity"}
            ]
        },
    )

    kind: BanKind
    value: str = Field(
        max_length=MAX_VALUE, description="ns/name[@commit], namespace, CC, sha256:…"
    )
    reason: str = Field(max_length=MAX_REASON)


class LiftRequest(BaseModel):
    """`POST /api/v1/bans/{id}/lift`."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=MAX_REASON)


def _apply(service: Service, ban: Ban, *, actor: str, lifted: bool) -> dict[str, Any]:
    """Decide again what the ban reaches, in every environment of the server's policy (and
    register the weights a model ban names as lineage bases)."""
    redecided = apply_ban_change(
        service.store,
        ban,
        service.policies.current(service.store).each(),
        actor=actor,
        lifted=lifted,
    )
    answer: dict[str, Any] = {
        "ban": ban.document(),
        "affected": [item.document(ban_id=ban.ban_id) for item in redecided],
    }
    if not lifted:
        answer["registered_bases"] = register_banned_weights(service.store, ban, redecided)
    return answer


def ban_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The ban routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter(tags=["bans"])
    viewer, approver = require(Role.VIEWER), require(Role.APPROVER)
    records = BanRecords(service.store)

    @router.post("/api/v1/bans", status_code=201, response_model=BanAdded)
    def add_ban(request: BanRequest, token: Annotated[ApiToken, approver]) -> dict[str, Any]:
        """Ban a model, publisher, jurisdiction or blob (approver); every recorded model it
        reaches is decided again, in every environment, with the ban as the reason."""
        value = normalise_ban_value(request.kind, request.value)
        reason = check_reason(request.reason)
        actor = f"token:{token.name}"
        ban = records.add_ban(request.kind, value, reason=reason, actor=actor)
        return _apply(service, ban, actor=actor, lifted=False)

    @router.post(
        "/api/v1/bans/{ban_id}/lift",
        response_model=BanLifted,
        responses={404: {"description": "No ban has this id."}},
    )
    def lift_ban(
        ban_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
        request: LiftRequest,
        token: Annotated[ApiToken, approver],
    ) -> dict[str, Any]:
        """Lift a ban (approver; recorded as a row of its own); what it reached is decided
        again."""
        reason = check_reason(request.reason)
        actor = f"token:{token.name}"
        ban = records.lift_ban(ban_id, reason=reason, actor=actor)
        return _apply(service, ban, actor=actor, lifted=True)

    @router.get("/api/v1/bans", response_model=BanList)
    def list_bans(
        _: Annotated[ApiToken, viewer], all: Annotated[bool, Query()] = False
    ) -> dict[str, Any]:
        """The bans in force, oldest first (`all=true`: lifted ones too)."""
        return {"bans": [ban.document() for ban in records.bans(active_only=not all)]}

    @router.get("/api/v1/decision-changes", response_model=DecisionChanges)
    def decision_changes(
        _: Annotated[ApiToken, viewer],
        subject: Annotated[str | None, Query(max_length=MAX_TARGET_LENGTH)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_CHANGES)] = 100,
    ) -> dict[str, Any]:
        """The newest changes of decision, newest first, each with its cause."""
        found = records.changes(limit=limit, subject=subject)
        return {"changes": [change.document() for change in found]}

    @router.get("/api/v1/blast-radius", response_model=BlastRadius)
    def blast_radius(
        token: Annotated[ApiToken, viewer],
        model: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
        blob: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
        publisher: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
        jurisdiction: Annotated[str | None, Query(max_length=MAX_VALUE)] = None,
    ) -> dict[str, Any]:
        """The recorded models a ban would reach, before it is made (nothing is recorded)."""
        given = [
            (kind, value)
            for kind, value in (
                (BanKind.MODEL, model),
                (BanKind.BLOB, blob),
                (BanKind.PUBLISHER, publisher),
                (BanKind.JURISDICTION, jurisdiction),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise UsageError("give exactly one of model, blob, publisher or jurisdiction")
        kind, value = given[0]
        at = datetime.now(UTC).isoformat()
        candidate = proposed_ban(kind, value, by=f"token:{token.name}", at=at)
        hits = preview(
            service.store,
            candidate,
            policy=service.policies.current(service.store).for_environment(None),
        )
        return {
            "kind": kind.value,
            "value": candidate.value,
            "models": [hit.reach_document() for hit in hits],
        }

    return router
