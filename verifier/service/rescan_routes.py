"""The route of the re-scans after a scanner upgrade: where each stands (viewer)."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query

from verifier.service.answers import RescanList
from verifier.service.core import Service
from verifier.service.model import ApiToken, RescanState, Role
from verifier.service.rescans import DEFAULT_RESCANS, MAX_RESCANS, rescan_overview


def rescan_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The re-scan route of `service`; `require(role)` is the app's token check."""
    router = APIRouter(tags=["upkeep"])
    viewer = require(Role.VIEWER)

    @router.get("/api/v1/rescans", response_model=RescanList)
    def rescans(
        _: Annotated[ApiToken, viewer],
        limit: Annotated[int, Query(ge=1, le=MAX_RESCANS)] = DEFAULT_RESCANS,
        state: RescanState | None = None,
    ) -> dict[str, Any]:
        """The recorded models an older verifier version scanned (and those this version
        re-scanned), in target order, up to `limit` examined: each waiting, held (its bytes
        not all kept, with the files), queued, failed (with the job's error) or done; only
        those in `state` when given. Read from the database and, for held, the blob stores
        of this server's host, as the upkeep pass reads them (no Hub request)."""
        return rescan_overview(service, limit=limit, state=state).document()

    return router
