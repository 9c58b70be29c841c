"""Routes of watches and of the Hub's webhook: verify each new commit of a watched reference."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from verifier import bounded_json
from verifier.errors import UsageError
from verifier.model import is_commit_id
from verifier.service.answers import HookQueued, WatchAdded, WatchList
from verifier.service.core import Service
from verifier.service.model import ApiToken, Role
from verifier.service.problems import ProblemError
from verifier.service.targets import MAX_TARGET_LENGTH, check_target
from verifier.store.watches import WatchRecords
from verifier.watches import hub_updates, parse_watch_target, secret_matches

#: Who the audit log names for scans a Hub webhook asked for.
HOOK_ACTOR = "hub-webhook"
#: What a webhook payload may be before it is parsed (the body cap of the app comes first).
PAYLOAD_LIMITS = bounded_json.JsonLimits(max_bytes=1 << 20, max_depth=16, max_nodes=100_000)
#: The header the Hub sends the webhook's secret in.
SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret


class WatchRequest(BaseModel):
    """`POST /api/v1/watches`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"target": "hf://acme/tiny@main"}]}
    )

    target: str = Field(max_length=MAX_TARGET_LENGTH, description="hf://namespace/name[@ref]")


def _verify(service: Service, records: WatchRecords, payload: Any) -> list[dict[str, Any]]:
    """Queue a scan of each new commit of a watched reference the payload reports."""
    queued = []
    for update in hub_updates(payload):
        for watch in records.watches(repo_id=update.repo_id):
            if watch.ref != update.ref:
                continue
            target = f"hf://{watch.repo_id}@{update.commit}"
            job = service.submit_scan(target, policy=None, environment=None, actor=HOOK_ACTOR)
            records.record_update(
                watch.watch_id, commit=update.commit, job_id=job.job_id, source="webhook"
            )
            queued.append({"watch": watch.watch_id, "target": target, "job": job.job_id})
    return queued


def watch_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The watch and webhook routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    viewer, scanner = require(Role.VIEWER), require(Role.SCANNER)
    records = WatchRecords(service.store)

    @router.post(
        "/api/v1/watches",
        tags=["watches"],
        status_code=201,
        response_model=WatchAdded,
        responses={
            200: {"model": WatchAdded, "description": "Watched already: the watch, no new job."}
        },
    )
    def add_watch(request: WatchRequest, token: Annotated[ApiToken, scanner]) -> JSONResponse:
        """Watch a reference (scanner): a new watch queues a scan of where it points now; the
        Hub's webhook then queues one for each new commit (201; 200 when already watched)."""
        repo_id, ref = parse_watch_target(check_target(request.target))
        actor = f"token:{token.name}"
        watch, created = records.add_watch(repo_id, ref, actor=actor)
        job_id = None
        if created:
            job = service.submit_scan(watch.target, policy=None, environment=None, actor=actor)
            commit = ref if is_commit_id(ref) else None
            records.record_update(watch.watch_id, commit=commit, job_id=job.job_id, source="added")
            job_id = job.job_id
        body = WatchAdded.model_validate(
            {"watch": records.get(watch.watch_id).document(), "job": job_id}
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)

    @router.get("/api/v1/watches", tags=["watches"], response_model=WatchList)
    def list_watches(_: Annotated[ApiToken, viewer]) -> dict[str, Any]:
        """Every watch with the newest commit of it verified, and the scans still pending."""
        return {"watches": [watch.document() for watch in records.watches()]}

    @router.post(
        "/api/v1/hooks/huggingface", tags=["watches"], status_code=202, response_model=HookQueued
    )
    async def huggingface_hook(request: Request) -> dict[str, Any]:
        """A Hugging Face webhook (authenticated by its secret, not a token): each new commit
        of a watched reference is queued for verification. A missing or wrong secret is 401
        and queues nothing."""
        given = request.headers.get(SECRET_HEADER)
        if not secret_matches(given, service.config.hub_webhook_secret):
            raise ProblemError(401, f"the {SECRET_HEADER} header is missing or wrong")
        try:
            payload = bounded_json.loads(await request.body(), PAYLOAD_LIMITS)
        except ValueError as exc:
            raise UsageError(f"the body is not a JSON webhook payload: {exc}") from None
        queued = await run_in_threadpool(_verify, service, records, payload)
        return {"queued": queued}

    return router
