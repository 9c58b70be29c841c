"""The dashboard: server-rendered pages over `Service` for people, behind the API's tokens.

A login form takes an API token and starts a server-side session (see `sessions`); every
page needs a session whose token is still active with the viewer role or above, and every
form carries the session's CSRF secret. Templates autoescape everything they render.
docs/service.md ("Dashboard") is the user's description.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from starlette.concurrency import run_in_threadpool

from verifier.bans import (
    Ban,
    BanKind,
    check_reason,
    estate_model,
    normalise_ban_value,
    proposed_ban,
)
from verifier.errors import NotFoundError, UsageError
from verifier.formats import help_uri
from verifier.redecide import Redecision, apply_ban_change, preview
from verifier.service import dashboard_views as views
from verifier.service.core import Service
from verifier.service.dashboard_pages import page_routes
from verifier.service.model import ApiToken, RescanState, Role
from verifier.service.rescans import DEFAULT_RESCANS, rescan_overview
from verifier.service.sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    DashboardSession,
    SessionStore,
    same_secret,
)
from verifier.service.targets import MAX_TARGET_LENGTH
from verifier.service.tokens import MAX_TOKEN_LENGTH, token_digest
from verifier.store.bans import BanRecords
from verifier.store.service_records import MAX_INVENTORY

PREFIX = "/dashboard"
#: Every dashboard answer carries these.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: Models read from the inventory at once (the API's most; the pages read them all).
INVENTORY_CHUNK = MAX_INVENTORY
#: Longest form body field read; the app's body limit bounds the whole body.
_MAX_FIELDS = 16
_FORM = "application/x-www-form-urlencoded"


def _templates() -> Environment:
    # autoescape=True for every template, whatever its name: nothing renders unescaped.
    env = Environment(loader=PackageLoader("verifier.service", "templates"), autoescape=True)
    env.filters["short"] = views.short
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["finding_docs"] = help_uri
    return env


def _secure(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form fields (first value of each), or None for another body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != _FORM:
        return None
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        return None
    return {name: values[0] for name, values in fields.items()}


def dashboard_routes(service: Service) -> APIRouter:
    """The dashboard of `service` under /dashboard."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    env = _templates()
    sessions = SessionStore()
    bans = BanRecords(service.store)

    def render(
        name: str, status: int = 200, session: DashboardSession | None = None, **context: Any
    ) -> Response:
        page = env.get_template(name).render(
            prefix=PREFIX, csrf=session.csrf if session else None, **context
        )
        return _secure(HTMLResponse(page, status_code=status))

    def login_redirect() -> Response:
        return _secure(RedirectResponse(f"{PREFIX}/login", status_code=303))

    def who(request: Request) -> tuple[DashboardSession, ApiToken] | None:
        session = sessions.get(request.cookies.get(SESSION_COOKIE), now=time.time())
        if session is None:
            return None
        token = service.records.authenticate(session.token_sha256)
        if token is None:  # revoked since login: the session ends with it
            sessions.end(session.session_id)
            return None
        return session, token

    def guarded(role: Role, request: Request, page: Callable[..., Response]) -> Response:
        """`page(session, token)` for a session whose token has `role`, else login or 403."""
        found = who(request)
        if found is None:
            return login_redirect()
        session, token = found
        if not token.role.allows(role):
            return render(
                "error.html",
                403,
                session,
                token=token,
                message=f"token {token.name} has role {token.role.value}; "
                f"this needs {role.value} or above",
            )
        try:
            return page(session, token)
        except (UsageError, NotFoundError) as error:
            status = 404 if isinstance(error, NotFoundError) else 422
            return render("error.html", status, session, token=token, message=str(error))

    def refuse_csrf(session: DashboardSession, token: ApiToken) -> Response:
        return render(
            "error.html", 403, session, token=token, message="the form is stale: reload the page"
        )

    @router.get("")
    def home() -> Response:
        return _secure(RedirectResponse(f"{PREFIX}/inventory", status_code=303))

    @router.get("/static/dashboard.css")
    def stylesheet() -> Response:
        return _secure(Response(_asset("dashboard.css"), media_type="text/css"))

    @router.get("/static/favicon.svg")
    def icon() -> Response:
        return _secure(Response(_asset("favicon.svg"), media_type="image/svg+xml"))

    @router.get("/login")
    def login_page(request: Request) -> Response:
        return login_form(request, status=200, message=None)

    def login_form(request: Request, *, status: int, message: str | None) -> Response:
        secret = secrets.token_urlsafe(32)
        response = render("login.html", status, login_csrf=secret, message=message)
        _cookie(request, response, LOGIN_CSRF_COOKIE, secret, max_age=3600)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await _form(request)
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if form is None or expected is None or not same_secret(form.get("csrf"), expected):
            return login_form(request, status=403, message="The form is stale: try again.")
        secret = form.get("token", "").strip()
        token = None
        if secret and len(secret) <= MAX_TOKEN_LENGTH:
            token = await run_in_threadpool(service.authenticate, secret)
        if token is None:
            return login_form(
                request, status=401, message="That token is not valid or was revoked."
            )
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:  # a new login never keeps the old session id alive
            sessions.end(previous)
        session = sessions.create(token_digest(secret), now=time.time())
        response = _secure(RedirectResponse(f"{PREFIX}/inventory", status_code=303))
        _cookie(request, response, SESSION_COOKIE, session.session_id, SESSION_LIFETIME)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await _form(request)
        found = await run_in_threadpool(who, request)
        if found is None:
            return login_redirect()
        session, token = found
        if form is None or not same_secret(form.get("csrf"), session.csrf):
            return refuse_csrf(session, token)
        sessions.end(session.session_id)
        response = login_redirect()
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def inventory_rows(text: str) -> list[dict[str, str]]:
        """Every recorded model (read in chunks the API's limit allows) matching `text`."""
        models: list[dict[str, Any]] = []
        while True:
            chunk = service.inventory(limit=INVENTORY_CHUNK, offset=len(models))["models"]
            models += chunk
            if len(chunk) < INVENTORY_CHUNK:
                return views.filter_rows(views.inventory_rows(models), text)

    @router.get("/inventory")
    def inventory(
        request: Request,
        q: Annotated[str, Query(max_length=200)] = "",
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    ) -> Response:
        def show(session: DashboardSession, token: ApiToken) -> Response:
            shown = views.paginate(inventory_rows(q), page, size=views.PAGE_SIZE)
            return render("inventory.html", 200, session, token=token, page=shown, q=q)

        return guarded(Role.VIEWER, request, show)

    @router.get("/inventory.csv")
    def inventory_csv(request: Request, q: Annotated[str, Query(max_length=200)] = "") -> Response:
        def page(session: DashboardSession, token: ApiToken) -> Response:
            body = views.inventory_csv(inventory_rows(q))
            disposition = 'attachment; filename="verifier-inventory.csv"'
            return _secure(
                Response(
                    body,
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": disposition},
                )
            )

        return guarded(Role.VIEWER, request, page)

    @router.get("/model")
    def model_page(
        request: Request, subject: Annotated[str, Query(max_length=MAX_TARGET_LENGTH)] = ""
    ) -> Response:
        def page(session: DashboardSession, token: ApiToken) -> Response:
            if not subject.startswith("hf://"):
                raise UsageError("give a model as subject=hf://namespace/name@<commit>")
            scan_id = service.store.find_scan_by_subject(subject)
            report = service.store.get_scan(scan_id)
            current = service.policies.current(service.store)
            policy = current.for_environment(None)
            verdict = service.records.decision_of(
                scan_id, policy_digest=current.digest, environment=None
            )
            publishers = policy.publishers
            estate = [estate_model(f, publishers=publishers) for f in bans.estate()]
            this = next((m for m in estate if m.key == subject), None)
            graph = views.lineage_graph(this, estate) if this is not None else None
            return render(
                "model.html",
                200,
                session,
                token=token,
                subject=subject,
                report=report,
                verdict=verdict or report.verdict,
                changes=bans.changes(limit=100, subject=subject),
                graph=graph,
                evidence_formats=views.EVIDENCE_LABELS,
                node_width=views.NODE_WIDTH,
                node_height=views.NODE_HEIGHT,
            )

        return guarded(Role.VIEWER, request, page)

    @router.get("/bans")
    def bans_page(request: Request) -> Response:
        def page(session: DashboardSession, token: ApiToken) -> Response:
            return render(
                "bans.html",
                200,
                session,
                token=token,
                bans=bans.bans(active_only=False),
                kinds=list(BanKind),
                may_ban=token.role.allows(Role.APPROVER),
                made=None,
            )

        return guarded(Role.VIEWER, request, page)

    @router.post("/bans")
    async def add_ban(request: Request) -> Response:
        form = await _form(request)

        def page(session: DashboardSession, token: ApiToken) -> Response:
            if form is None or not same_secret(form.get("csrf"), session.csrf):
                return refuse_csrf(session, token)
            kind = _kind(form.get("kind", ""))
            value = normalise_ban_value(kind, form.get("value", "")[:256])
            reason = check_reason(form.get("reason", "")[:4_000])
            actor = f"dashboard:{token.name}"
            ban = bans.add_ban(kind, value, reason=reason, actor=actor)
            return bans_done(session, token, ban, redecide(ban, actor=actor, lifted=False), 201)

        return await run_in_threadpool(guarded, Role.APPROVER, request, page)

    @router.post("/bans/{ban_id}/lift")
    async def lift_ban(request: Request, ban_id: int) -> Response:
        form = await _form(request)

        def page(session: DashboardSession, token: ApiToken) -> Response:
            if form is None or not same_secret(form.get("csrf"), session.csrf):
                return refuse_csrf(session, token)
            reason = check_reason(form.get("reason", "")[:4_000])
            actor = f"dashboard:{token.name}"
            ban = bans.lift_ban(ban_id, reason=reason, actor=actor)
            return bans_done(session, token, ban, redecide(ban, actor=actor, lifted=True), 200)

        return await run_in_threadpool(guarded, Role.APPROVER, request, page)

    def redecide(ban: Ban, *, actor: str, lifted: bool) -> list[Redecision]:
        """Decide again what the ban reaches, in every environment (as the API does)."""
        return apply_ban_change(
            service.store,
            ban,
            service.policies.current(service.store).each(),
            actor=actor,
            lifted=lifted,
        )

    def bans_done(
        session: DashboardSession,
        token: ApiToken,
        ban: Ban,
        affected: list[Redecision],
        status: int,
    ) -> Response:
        return render(
            "bans.html",
            status,
            session,
            token=token,
            bans=bans.bans(active_only=False),
            kinds=list(BanKind),
            may_ban=True,
            made=ban,
            affected=affected,
        )

    @router.get("/audit")
    def audit(request: Request) -> Response:
        def page(session: DashboardSession, token: ApiToken) -> Response:
            events = service.records.audit_events(limit=200)
            held = rescan_overview(service, limit=DEFAULT_RESCANS, state=RescanState.HELD)
            return render("audit.html", 200, session, token=token, events=events, held=held)

        return guarded(Role.VIEWER, request, page)

    @router.get("/blast-radius")
    def blast_radius(
        request: Request,
        kind: Annotated[str, Query(max_length=16)] = "",
        value: Annotated[str, Query(max_length=256)] = "",
    ) -> Response:
        def page(session: DashboardSession, token: ApiToken) -> Response:
            hits = None
            if kind or value:
                candidate = proposed_ban(
                    _kind(kind), value, by=f"dashboard:{token.name}", at=_now()
                )
                policy = service.policies.for_environment(None)
                hits = preview(service.store, candidate, policy=policy)
            return render(
                "blast.html",
                200,
                session,
                token=token,
                kinds=[BanKind.MODEL, BanKind.BLOB, BanKind.PUBLISHER, BanKind.JURISDICTION],
                kind=kind,
                value=value,
                hits=hits,
            )

        return guarded(Role.VIEWER, request, page)

    page_routes(router, service, render=render, guarded=guarded, secure=_secure)
    return router


def _asset(name: str) -> str:
    return resources.files("verifier.service").joinpath("templates", name).read_text("utf-8")


def _kind(text: str) -> BanKind:
    try:
        return BanKind(text)
    except ValueError:
        raise UsageError(
            f"{text!r} is not a kind of ban: model, publisher, jurisdiction or blob"
        ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat()
