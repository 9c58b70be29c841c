"""Routes of API tokens (admin): create one (its secret shown once), list them, revoke one.

The same records as `verifier token create|list|revoke`: only the SHA-256 of a secret is kept,
names are never reused, and each change is written with its audit event.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from verifier.errors import ConflictError
from verifier.service.answers import TokenCreated, TokenEntry, TokenList
from verifier.service.core import Service
from verifier.service.model import ApiToken, Role
from verifier.service.tokens import TOKEN_NAME, check_token_name, new_token, token_digest


class TokenRequest(BaseModel):
    """`POST /api/v1/tokens`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "ci-main", "role": "scanner"}]}
    )

    name: str = Field(max_length=64, description="New token name: [a-z0-9][a-z0-9._-]*")
    role: Role


def _entry(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "role": token.role.value,
        "created_at": token.created_at,
        "created_by": token.created_by,
        "revoked_at": token.revoked_at,
        "revoked_by": token.revoked_by,
    }


def token_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The token routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    admin = require(Role.ADMIN)

    @router.post(
        "/api/v1/tokens",
        status_code=201,
        tags=["tokens"],
        response_model=TokenCreated,
        responses={409: {"description": "A token (even a revoked one) has this name."}},
    )
    def create_token(
        request: TokenRequest, response: Response, token: Annotated[ApiToken, admin]
    ) -> dict[str, Any]:
        """Create a token (admin). Its secret is in this answer only (never stored: the
        database keeps its SHA-256), so the answer is marked not to be cached."""
        name = check_token_name(request.name)
        if any(known.name == name for known in service.records.list_tokens()):
            raise ConflictError(
                f"a token named {name!r} exists already (names are never reused, even after "
                "revocation): choose another name"
            )
        secret = new_token()
        created = service.records.create_token(
            name=name,
            role=request.role,
            token_sha256=token_digest(secret),
            actor=f"token:{token.name}",
        )
        response.headers["Cache-Control"] = "no-store"
        return {"token": _entry(created), "secret": secret}

    @router.get("/api/v1/tokens", tags=["tokens"], response_model=TokenList)
    def list_tokens(_: Annotated[ApiToken, admin]) -> dict[str, Any]:
        """Every token ever created, oldest first, revoked ones included (admin; never a
        secret)."""
        return {"tokens": [_entry(known) for known in service.records.list_tokens()]}

    @router.post(
        "/api/v1/tokens/{name}/revoke",
        tags=["tokens"],
        response_model=TokenEntry,
        responses={
            404: {"description": "No token has this name."},
            409: {"description": "The token was revoked already."},
        },
    )
    def revoke_token(
        name: Annotated[str, PathParam(max_length=64, pattern=TOKEN_NAME.pattern)],
        token: Annotated[ApiToken, admin],
    ) -> dict[str, Any]:
        """Revoke a token (admin): it never authenticates again, from the next request on."""
        known = {each.name: each for each in service.records.list_tokens()}
        if name in known and known[name].revoked_at is not None:
            raise ConflictError(f"token {name!r} was revoked already at {known[name].revoked_at}")
        return _entry(service.records.revoke_token(name, actor=f"token:{token.name}"))

    return router
