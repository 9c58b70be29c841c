"""Routes of the server's policy: read its files again, and decide again with them."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from verifier.service.answers import Answer, Redecided
from verifier.service.core import Service
from verifier.service.model import ApiToken, Role
from verifier.service.upkeep import reload_and_redecide


class PolicyReloaded(Answer):
    """`POST /api/v1/policies/reload`."""

    changed: bool = Field(description="Whether the files said something else.")
    policy: str
    policy_digest_before: str
    policy_digest: str
    redecided: int = Field(description="Decisions made again.")
    redecided_here: bool = Field(description="False: another server's pass decides them.")
    changes: list[Redecided] = Field(description="The models whose decision changed.")


def policy_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The policy routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    admin = require(Role.ADMIN)

    @router.post("/api/v1/policies/reload", tags=["policies"], response_model=PolicyReloaded)
    async def reload(token: Annotated[ApiToken, admin]) -> dict[str, Any]:
        """Read the policy file, the publisher registry and the waivers files again (admin).
        When they changed, the server decides with them from now on (audited) and every
        recorded model is decided again from its stored facts, each change recorded with
        cause `policy`. Files that no longer read well are a 422 and the policy in use stays."""
        done = await run_in_threadpool(reload_and_redecide, service, actor=f"token:{token.name}")
        return done.document(policy=service.policies.name)

    return router
