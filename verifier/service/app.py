"""The HTTP API (version 1): FastAPI routes over `Service`, bearer tokens, problem documents."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time, and
# the dependencies they name are local to `create_app`.
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Path, Query, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from verifier import __version__
from verifier.service import problems
from verifier.service.answers import (
    AdmissionReviewAnswer,
    AuditLog,
    DecisionAnswer,
    Inventory,
    ModelRecord,
    NotificationLog,
    ScanAccepted,
    ScanJobAnswer,
    add_examples,
    scan_document_components,
)
from verifier.service.bans import ban_routes
from verifier.service.collection import collection_routes
from verifier.service.core import Service
from verifier.service.dashboard import dashboard_routes
from verifier.service.gate_cache import CoalescedCount, FastDecisions
from verifier.service.model import MAX_ROW_ID, ApiToken, JobStatus, Role
from verifier.service.notify_routes import notify_routes
from verifier.service.policy_routes import policy_routes
from verifier.service.rescan_routes import rescan_routes
from verifier.service.targets import MAX_TARGET_LENGTH
from verifier.service.token_routes import token_routes
from verifier.service.upkeep import start_background
from verifier.service.waivers import waiver_routes
from verifier.service.watches import watch_routes
from verifier.store.notifications import MAX_LOG, NotificationRecords

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_bearer = HTTPBearer(auto_error=False, description="An API token made by `verifier token create`.")
_EXAMPLE_TARGET = "hf://acme/tiny@0123456789abcdef0123456789abcdef01234567"
_EXAMPLE_ID = _EXAMPLE_TARGET.removeprefix("hf://")
#: The problem statuses a path answers with beside `problems.COMMON_PROBLEMS`.
PROBLEM_ROUTES: dict[str, tuple[int, ...]] = {
    "/api/v1/scans/{job_id}": (404,),
    "/api/v1/notifications/subscriptions": (409,),
    "/api/v1/notifications/subscriptions/{subscription_id}": (404,),
    "/api/v1/models/{model_id}": (404,),
    "/api/v1/bans/{ban_id}/lift": (404,),
    "/api/v1/waivers": (409,),
    "/api/v1/approvals": (404, 409),
    "/api/v1/blobs/gc": (502,),
}


class ScanRequest(BaseModel):
    """`POST /api/v1/scans`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"target": _EXAMPLE_TARGET, "environment": None}]},
    )

    target: str = Field(max_length=MAX_TARGET_LENGTH, description="hf://namespace/name[@rev]")
    policy: str | None = Field(
        default=None, max_length=128, description="The server's policy: null, default or its name."
    )
    environment: str | None = Field(
        default=None, max_length=64, description="Environment of the policy [its default]."
    )


class Health(BaseModel):
    """`GET /healthz`."""

    model_config = ConfigDict(extra="forbid")

    status: str
    version: str


class BodyLimit:
    """Refuse request bodies over a size with 413, reading at most that much of them."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the app see that
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                response = problems.problem(
                    413, f"the request body is larger than {self.limit} bytes"
                )
                await response(scope, receive, send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class GateApp(FastAPI):
    """FastAPI with `FastDecisions` in front of its whole middleware stack: a kept gate answer
    costs no routing, no middleware, no dependency and no thread; every other request goes
    through the stack as in any FastAPI app."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is None:
            await super().__call__(scope, receive, send)
        else:
            await front(scope, receive, send)

    async def behind(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app without its front: FastAPI's middleware stack and routes."""
        await super().__call__(scope, receive, send)


def create_app(
    service: Service, *, max_body_bytes: int = 1 << 20, freeze_gc: bool = False
) -> FastAPI:
    """The application for `service` (started and closed with the app's lifespan).

    With `freeze_gc` (a server process of its own, as `verifier serve` runs it), once started
    the app moves every object it made so far (modules, schemas, routes, the policy) out of
    the garbage collector's reach (`gc.freeze`): a full collection then scans only what came
    after, which takes milliseconds instead of a pause of 100 to 200 ms for every request in
    flight (measured: docs/benchmarks.md).
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            background = start_background(service)
        except BaseException:
            service.close()
            raise
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            background.stop()
            service.close()

    app = GateApp(
        title="verifier",
        version=__version__,
        summary="Supply-chain verification of model weights: scans, decisions, admission.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    problems.install(app)

    def require(role: Role) -> Any:
        def check(
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
        ) -> ApiToken:
            challenge = {"WWW-Authenticate": 'Bearer realm="verifier"'}
            if credentials is None:
                raise problems.ProblemError(
                    401,
                    "a bearer token is required: Authorization: Bearer <token>",
                    headers=challenge,
                )
            token = service.authenticate(credentials.credentials)
            if token is None:
                raise problems.ProblemError(
                    401, "the bearer token is not valid or was revoked", headers=challenge
                )
            if not token.role.allows(role):
                raise problems.ProblemError(
                    403,
                    f"token {token.name} has role {token.role.value}; "
                    f"this needs {role.value} or above",
                )
            return token

        return Depends(check)

    viewer, scanner = require(Role.VIEWER), require(Role.SCANNER)

    @app.get("/healthz", tags=["service"], response_model=None, responses={200: {"model": Health}})
    def healthz() -> dict[str, str]:
        """Liveness: the process answers (anonymous, reads nothing)."""
        return {"status": "ok", "version": __version__}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(_: Annotated[ApiToken, viewer]) -> dict[str, Any]:
        return app.openapi()

    @app.post(
        "/api/v1/scans",
        status_code=202,
        response_model=ScanAccepted,
        tags=["scans"],
        responses={200: {"model": ScanAccepted, "description": "Already scanned: the answer."}},
    )
    def submit_scan(request: ScanRequest, token: Annotated[ApiToken, scanner]) -> JSONResponse:
        """Queue a scan (202), or answer at once with the same target already scanned at
        the same commit under the same policy digest and environment (200)."""
        job = service.submit_scan(
            request.target,
            policy=request.policy,
            environment=request.environment,
            actor=f"token:{token.name}",
        )
        body = ScanAccepted(id=job.job_id, status=job.status, scan_id=job.scan_id)
        done = job.status in (JobStatus.COMPLETE, JobStatus.FAILED)
        return JSONResponse(
            body.model_dump(mode="json"),
            status_code=200 if done else 202,
            headers={"Location": f"/api/v1/scans/{job.job_id}"},
        )

    @app.get(
        "/api/v1/scans/{job_id}",
        tags=["scans"],
        response_model=ScanJobAnswer,
        responses={404: {"description": "No scan job has this id."}},
    )
    def get_scan(job_id: str, _: Annotated[ApiToken, viewer]) -> dict[str, Any]:
        """A scan job; once complete, `result` is what `verifier scan --format json` prints."""
        return service.job_document(job_id)

    @app.get(
        "/api/v1/decision",
        tags=["decisions"],
        response_model=None,
        responses={200: {"model": DecisionAnswer}},
    )
    def decision(
        _: Annotated[ApiToken, viewer],
        target: Annotated[str, Query(max_length=MAX_TARGET_LENGTH, examples=[_EXAMPLE_TARGET])],
        environment: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        """allow, deny or unknown for a pinned model, from the database (never scans)."""
        return Response(
            service.decision_body(target, environment=environment), media_type="application/json"
        )

    @app.post(
        "/api/v1/admission",
        tags=["admission"],
        response_model=AdmissionReviewAnswer,
        response_model_exclude_unset=True,
    )
    def admission(
        _: Annotated[ApiToken, viewer],
        review: Annotated[dict[str, Any], Body()],
        environment: Annotated[str | None, Query(max_length=64)] = None,
    ) -> dict[str, Any]:
        """Kubernetes ValidatingAdmissionWebhook for KServe InferenceServices."""
        return service.admission(review, environment=environment)

    @app.get("/api/v1/models", tags=["inventory"], response_model=Inventory)
    def models(
        _: Annotated[ApiToken, viewer],
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
    ) -> dict[str, Any]:
        """Inventory: every model@commit scanned, with publisher, decision, findings, signature."""
        return service.inventory(limit=limit, offset=offset)

    @app.get(
        "/api/v1/models/{model_id:path}",
        tags=["inventory"],
        response_model=ModelRecord,
        responses={404: {"description": "No scan of this model@commit is recorded."}},
    )
    def model(
        _: Annotated[ApiToken, viewer],
        model_id: Annotated[str, Path(max_length=MAX_TARGET_LENGTH, examples=[_EXAMPLE_ID])],
    ) -> dict[str, Any]:
        """One model@commit (`namespace/name@<40-hex commit>`): its newest scan document,
        its decision in every environment, every recorded scan, its decision changes."""
        return service.model(f"hf://{model_id.removeprefix('hf://')}")

    @app.get("/api/v1/audit", tags=["audit"], response_model=AuditLog)
    def audit(
        _: Annotated[ApiToken, viewer],
        limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    ) -> dict[str, Any]:
        """The newest state changes, newest first: who, what, when."""
        events = service.records.audit_events(limit=limit)
        return {
            "events": [
                {
                    "id": e.event_id,
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action.value,
                    "subject": e.subject,
                    "detail": dict(e.detail),
                }
                for e in events
            ]
        }

    @app.get("/api/v1/notifications", tags=["audit"], response_model=NotificationLog)
    def notifications(
        _: Annotated[ApiToken, viewer],
        limit: Annotated[int, Query(ge=1, le=MAX_LOG)] = 100,
    ) -> dict[str, Any]:
        """The delivery log of outgoing notifications, newest first: event, target (the
        URL's origin only), status, attempts, the last answer or error."""
        found = NotificationRecords(service.store).log(limit=limit)
        return {"notifications": [item.document() for item in found]}

    app.include_router(policy_routes(service, require))
    app.include_router(notify_routes(service, require))
    app.include_router(ban_routes(service, require))
    app.include_router(watch_routes(service, require))
    app.include_router(waiver_routes(service, require))
    app.include_router(collection_routes(service, require))
    app.include_router(rescan_routes(service, require))
    app.include_router(token_routes(service, require))
    app.include_router(dashboard_routes(service))
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.front = FastDecisions(
        app.behind,
        cache=service.gate_cache,
        count=CoalescedCount(service.change_count, inline=service.store.backend == "sqlite"),
        digest=lambda: service.policies.digest,
    )
    generate = app.openapi

    def documented() -> dict[str, Any]:
        """FastAPI's document, with the problem documents every route answers with."""
        if app.openapi_schema is None:
            schema = generate()
            schema["components"]["schemas"].update(scan_document_components())
            add_examples(schema["components"]["schemas"])
            problems.document_problems(schema, PROBLEM_ROUTES)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = documented  # type: ignore[method-assign]
    return app
