"""Routes of notification subscriptions: where signed notifications go, recorded as data."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import secrets
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from verifier.errors import ConflictError
from verifier.notifications import (
    MAX_FILTER,
    MAX_SECRET_LENGTH,
    MAX_URL,
    MAX_WAIVER_DAYS,
    NotificationEvent,
    new_subscription,
)
from verifier.service import notify
from verifier.service.core import Service
from verifier.service.model import MAX_ROW_ID, ApiToken, Role
from verifier.store.notifications import SubscriptionRecords

#: The path of the subscriptions (the delivery log is `GET /api/v1/notifications`).
SUBSCRIPTIONS = "/api/v1/notifications/subscriptions"


class SubscriptionRequest(BaseModel):
    """`POST /api/v1/notifications/subscriptions`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example/verifier",
                    "events": ["decision.changed", "finding.critical"],
                    "environment": "production",
                }
            ]
        },
    )

    url: str = Field(max_length=MAX_URL, description="https:// (http:// to loopback only)")
    secret: str | None = Field(
        default=None,
        max_length=MAX_SECRET_LENGTH,
        description="Signs each delivery (at least 16 characters); null: one is made and "
        "returned once, in this answer.",
    )
    events: list[NotificationEvent] = Field(
        default_factory=lambda: list(NotificationEvent), min_length=1, max_length=8
    )
    waiver_days: int | None = Field(
        default=None,
        ge=0,
        le=MAX_WAIVER_DAYS,
        description="Tell of waivers expiring within this many days [--notify-waiver-days].",
    )
    environment: str | None = Field(
        default=None, max_length=MAX_FILTER, description="Only decision changes in it."
    )
    publisher: str | None = Field(
        default=None, max_length=MAX_FILTER, description="Only models of this Hub namespace."
    )


def notify_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The subscription routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    admin = require(Role.ADMIN)
    records = SubscriptionRecords(service.store)

    @router.post(SUBSCRIPTIONS, tags=["notifications"], status_code=201)
    def subscribe(request: SubscriptionRequest, token: Annotated[ApiToken, admin]) -> JSONResponse:
        """Send signed notifications of the chosen events to a URL (admin; audited). The
        secret is stored to sign with and never shown again; one made by the server is in
        this answer only. A URL subscribed already (or given by `--notify-url`) is a 409."""
        if request.url in service.config.notify_urls:
            raise ConflictError(
                "this URL is configured by the server's --notify-url; remove the flag first"
            )
        made = secrets.token_urlsafe(32) if request.secret is None else None
        subscription = new_subscription(
            request.url,
            secret=made or request.secret or "",
            events=[event.value for event in request.events],
            waiver_days=(
                service.config.notify_waiver_days
                if request.waiver_days is None
                else request.waiver_days
            ),
            environment=request.environment,
            publisher=request.publisher,
            environments=service.policies.environments,
        )
        added = records.add(subscription, actor=f"token:{token.name}")
        return JSONResponse({"subscription": added.document(), "secret": made}, status_code=201)

    @router.get(SUBSCRIPTIONS, tags=["notifications"])
    def subscriptions(_: Annotated[ApiToken, admin]) -> dict[str, Any]:
        """Every subscription (admin): the recorded ones and the server's `--notify-url`s
        (`configured_by: flag`, id null). Never the secrets."""
        return {"subscriptions": [s.document() for s in notify.subscriptions(service)]}

    @router.delete(SUBSCRIPTIONS + "/{subscription_id}", tags=["notifications"])
    def unsubscribe(
        subscription_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
        token: Annotated[ApiToken, admin],
    ) -> dict[str, Any]:
        """Remove a recorded subscription (admin; audited): nothing more is sent to it, and
        what was still owed to it is given up."""
        removed = records.remove(subscription_id, actor=f"token:{token.name}")
        return {"subscription": removed.document()}

    return router
