"""Routes of notification subscriptions: where signed notifications go, recorded as data."""

# No `from __future__ import annotations`: FastAPI reads the route signatures at run time.
import secrets
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
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
from verifier.service.answers import Answer
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


class SubscriptionEntry(Answer):
    """A subscription, never with its secret."""

    id: int | None = Field(description="null: a --notify-url of the server.")
    url: str
    events: list[NotificationEvent]
    waiver_days: int
    environment: str | None
    publisher: str | None
    created_at: str | None
    created_by: str | None
    configured_by: Literal["api", "flag"]


class Deliveries(Answer):
    """Whether the server answering sends notifications, and how often."""

    enabled: bool = Field(description="false: this server sends none (`--notify-interval 0`).")
    every_seconds: float = Field(description="Seconds between its delivery passes (0: none).")
    note: str = Field(description="The same, in a sentence.")


class SubscriptionMade(Answer):
    """`POST /api/v1/notifications/subscriptions`."""

    subscription: SubscriptionEntry
    secret: str | None = Field(description="The secret the server made (shown once), or null.")
    deliveries: Deliveries


class SubscriptionList(Answer):
    """`GET /api/v1/notifications/subscriptions`."""

    subscriptions: list[SubscriptionEntry]
    deliveries: Deliveries


class SubscriptionRemoved(Answer):
    """`DELETE /api/v1/notifications/subscriptions/{id}`."""

    subscription: SubscriptionEntry


def notify_routes(service: Service, require: Callable[[Role], Any]) -> APIRouter:
    """The subscription routes of `service`; `require(role)` is the app's token check."""
    router = APIRouter()
    admin = require(Role.ADMIN)
    records = SubscriptionRecords(service.store)

    @router.post(
        SUBSCRIPTIONS, tags=["notifications"], status_code=201, response_model=SubscriptionMade
    )
    def subscribe(
        request: SubscriptionRequest, token: Annotated[ApiToken, admin]
    ) -> dict[str, Any]:
        """Send signed notifications of the chosen events to a URL (admin; audited). The
        secret is stored to sign with and never shown again; one made by the server is in
        this answer only. A URL subscribed already (or given by `--notify-url`) is a 409.
        `deliveries` says whether this server sends notifications, and how often."""
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
        return {
            "subscription": added.document(),
            "secret": made,
            "deliveries": notify.deliveries_document(service),
        }

    @router.get(SUBSCRIPTIONS, tags=["notifications"], response_model=SubscriptionList)
    def subscriptions(_: Annotated[ApiToken, admin]) -> dict[str, Any]:
        """Every subscription (admin): the recorded ones and the server's `--notify-url`s
        (`configured_by: flag`, id null), and whether this server sends notifications. Never
        the secrets."""
        return {
            "subscriptions": [s.document() for s in notify.subscriptions(service)],
            "deliveries": notify.deliveries_document(service),
        }

    @router.delete(
        SUBSCRIPTIONS + "/{subscription_id}",
        tags=["notifications"],
        response_model=SubscriptionRemoved,
    )
    def unsubscribe(
        subscription_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
        token: Annotated[ApiToken, admin],
    ) -> dict[str, Any]:
        """Remove a recorded subscription (admin; audited): nothing more is sent to it, and
        what was still owed to it is given up."""
        removed = records.remove(subscription_id, actor=f"token:{token.name}")
        return {"subscription": removed.document()}

    return router
