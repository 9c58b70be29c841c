"""The route of blob collection: `verifier blobs gc` run by the server (admin)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from verifier.blobs.gc import DEFAULT_OLDER_THAN, parse_duration
from verifier.service.answers import BlobsCollected
from verifier.service.core import Service
from verifier.service.model import ApiToken, Role


class CollectRequest(BaseModel):
    """`POST /api/v1/blobs/gc`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"older_than": DEFAULT_OLDER_THAN, "delete": False}]},
    )

    older_than: str = Field(
        default=DEFAULT_OLDER_THAN,
        max_length=16,
        description="Grace period: s, m, h, d or w; at least 1h.",
    )
    delete: bool = Field(default=False, description="Delete the garbage (false: a dry run).")


def collection_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The blob collection route of `service`; `require(role)` is the app's token check."""
    router = APIRouter(tags=["blobs"])
    admin = require(Role.ADMIN)

    @router.post("/api/v1/blobs/gc", response_model=BlobsCollected)
    def collect_blobs(request: CollectRequest, token: Annotated[ApiToken, admin]) -> dict[str, Any]:
        """Collect the blobs no recorded scan names (admin), from the server host's folder and
        the shared store: a dry run unless `delete`; each store deleted from is in the audit
        log (`blobs.collected`). Runs in the request: a large store takes a while."""
        grace = parse_duration(request.older_than)
        actor = f"token:{token.name}"
        done = service.collect_blobs(grace=grace, delete=request.delete, actor=actor)
        return {"dry_run": not request.delete, "stores": [found.document() for found in done]}

    return router
