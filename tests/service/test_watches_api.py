"""Watches and the Hugging Face webhook through the API, against the Hub emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api, start
from tests.sources.test_huggingface import model_files
from verifier.service.app import create_app
from verifier.service.model import Role

SECRET = "hook-secret-for-tests"


@pytest.fixture
def hooked(database_url: str, hub: HubEmulator) -> Iterator[Api]:
    """The service with a webhook secret configured."""
    service, tokens = start(database_url, hub_webhook_secret=SECRET)
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


def payload(repo: str, *refs: tuple[str, str], scope: str = "repo.content") -> dict[str, Any]:
    """A Hugging Face webhook payload (as docs/hub/webhooks.md shows it) moving `refs`."""
    return {
        "event": {"action": "update", "scope": scope},
        "repo": {
            "type": "model",
            "name": repo,
            "id": "6366c000a2abcdf2fd69a080",
            "private": False,
            "headSha": refs[0][1] if refs else None,
        },
        "updatedRefs": [{"ref": ref, "oldSha": None, "newSha": sha} for ref, sha in refs],
        "webhook": {"id": "6390e855e30d9209411de93b", "version": 3},
    }


def _hook(api: Api, body: Any, secret: str | bytes | None = SECRET) -> Any:
    headers = {} if secret is None else {"X-Webhook-Secret": secret}
    return api.client.post("/api/v1/hooks/huggingface", json=body, headers=headers)


def _watches(api: Api) -> list[dict[str, Any]]:
    response = api.call("GET", "/api/v1/watches", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["watches"]
    return found


def _requested(api: Api) -> list[str]:
    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    return [e["subject"] for e in events if e["action"] == "scan.requested"]


def test_a_watched_branch_moves_only_to_verified_commits(hooked: Api, hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    first = repo.refs["main"]
    made = hooked.call(
        "POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny"}
    )
    assert made.status_code == 201, made.text
    hooked.service.runner.drain()
    [watch] = _watches(hooked)
    assert (watch["target"], watch["commit"], watch["pending"]) == (
        "hf://acme/tiny@main",
        first,
        [],
    )
    again = hooked.call(
        "POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny@main"}
    )
    assert again.status_code == 200 and again.json()["job"] is None

    second = repo.commit(model_files(fill=2))
    accepted = _hook(hooked, payload("acme/tiny", ("refs/heads/main", second)))
    assert accepted.status_code == 202, accepted.text
    [queued] = accepted.json()["queued"]
    assert queued["target"] == f"hf://acme/tiny@{second}"
    hooked.service.runner.drain()
    assert _watches(hooked)[0]["commit"] == second
    decision = hooked.call(
        "GET", f"/api/v1/decision?target=hf://acme/tiny@{second}", role=Role.VIEWER
    ).json()
    assert decision["decision"] == "allow"

    # A commit the Hub does not have: its scan fails, and the watch stays where it was.
    missing = "f" * 40
    assert _hook(hooked, payload("acme/tiny", ("refs/heads/main", missing))).status_code == 202
    hooked.service.runner.drain()
    assert _watches(hooked)[0]["commit"] == second


def test_a_wrong_or_missing_secret_queues_nothing(hooked: Api, hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    hooked.call("POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny"})
    hooked.service.runner.drain()
    before = _requested(hooked)
    second = repo.commit(model_files(fill=3))
    body = payload("acme/tiny", ("refs/heads/main", second))
    for secret in (None, "", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper(), b"\xe9"):
        response = _hook(hooked, body, secret)
        assert response.status_code == 401, secret
        assert response.headers["content-type"] == "application/problem+json"
    # A bearer token is not a webhook secret.
    with_token = hooked.call("POST", "/api/v1/hooks/huggingface", role=Role.ADMIN, json=body)
    assert with_token.status_code == 401
    hooked.service.runner.drain()
    assert _requested(hooked) == before
    assert _watches(hooked)[0]["commit"] not in (None, second)


def test_without_a_configured_secret_every_webhook_is_refused(api: Api) -> None:
    body = payload("acme/tiny", ("refs/heads/main", "a" * 40))
    assert _hook(api, body, "anything").status_code == 401
    assert _hook(api, body, "").status_code == 401


def test_events_that_move_no_watched_reference_queue_nothing(hooked: Api, hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    hooked.call("POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny@v1"})
    hooked.service.runner.drain()
    before = _requested(hooked)
    sha = "b" * 40
    for body in (
        payload("acme/tiny", ("refs/heads/main", sha)),  # not the watched tag
        payload("acme/tiny", ("refs/pr/3", sha)),  # a pull request
        payload("acme/tiny", ("refs/tags/v1", sha), scope="discussion"),
        payload("other/model", ("refs/tags/v1", sha)),  # not watched
        {
            **payload("acme/tiny", ("refs/tags/v1", sha)),
            "repo": {"type": "dataset", "name": "acme/tiny"},
        },
    ):
        response = _hook(hooked, body)
        assert response.status_code == 202, (body, response.text)
        assert response.json()["queued"] == []
    bad_name = {"event": {"scope": "repo.content"}, "repo": {"type": "model", "name": "../x"}}
    for bad in ({"event": "x"}, [], bad_name, {**bad_name, "repo": {"type": "model"}}):
        response = _hook(hooked, bad)
        assert response.status_code == 422, bad
    deep = hooked.client.post(
        "/api/v1/hooks/huggingface",
        content=b"[" * 5000 + b"]" * 5000,
        headers={"X-Webhook-Secret": SECRET, "Content-Type": "application/json"},
    )
    assert deep.status_code == 422
    assert _requested(hooked) == before
