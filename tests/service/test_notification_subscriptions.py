"""Notification subscriptions as data (`/api/v1/notifications/subscriptions`, `verifier notify`):
each is told of its own events, past its own filter, signed with its own secret; tested
against the loopback receiver of tests/service/test_notifications.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api
from tests.service.test_notifications import SECRET, Receiver, receiver  # noqa: F401
from tests.service.test_upkeep import serving
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.errors import UsageError
from verifier.notifications import (
    NotificationEvent,
    Subscription,
    new_subscription,
    verify_signature,
)
from verifier.service.model import Role
from verifier.service.upkeep import run_pass

SUBSCRIPTIONS = "/api/v1/notifications/subscriptions"


@contextmanager
def another_receiver() -> Iterator[Receiver]:
    found = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), found.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def _subscribe(api: Api, **body: Any) -> dict[str, Any]:
    response = api.call("POST", SUBSCRIPTIONS, role=Role.ADMIN, json=body)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def _ban(api: Api, kind: str, value: str) -> None:
    banned = api.call(
        "POST",
        "/api/v1/bans",
        role=Role.APPROVER,
        json={"kind": kind, "value": value, "reason": "a test"},
    )
    assert banned.status_code == 201, banned.text


def _log(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.call("GET", "/api/v1/notifications").json()["notifications"]
    return found


def test_a_subscription_is_told_of_its_own_events_only(
    database_url: str,
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
    marker_dir: Path,
) -> None:
    tiny = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    evil = f"hf://acme/evil@{hub.add_repo('acme/evil', files).refs['main']}"
    with serving(database_url) as api:
        api.scan(tiny)  # before the subscription: never told
        for role in (Role.VIEWER, Role.SCANNER, Role.APPROVER):
            for method, path in (("POST", SUBSCRIPTIONS), ("GET", SUBSCRIPTIONS)):
                refused = api.call(method, path, role=role, json={"url": receiver.url})
                assert refused.status_code == 403, refused.text
            assert api.call("DELETE", f"{SUBSCRIPTIONS}/1", role=role).status_code == 403
        made = _subscribe(api, url=receiver.url, secret=SECRET, events=["decision.changed"])
        assert made["secret"] is None  # given by the caller: not echoed
        subscription = made["subscription"]
        assert subscription["events"] == ["decision.changed"]
        assert (subscription["configured_by"], subscription["waiver_days"]) == ("api", 14)
        listed = api.call("GET", SUBSCRIPTIONS)
        assert SECRET not in listed.text and "secret" not in listed.text
        assert listed.json()["subscriptions"] == [subscription]

        api.scan(evil)  # critical findings: not one of its events
        _ban(api, "model", "acme/tiny")
        done = run_pass(api.service, poll=False)
        assert done is not None
        [got] = receiver.received
        assert got["signed"] and got["fresh"] and got["event"] == "decision.changed"
        assert (got["body"]["data"]["subject"], got["body"]["data"]["cause"]) == (tiny, "ban")
        assert [n["event"] for n in _log(api)] == ["decision.changed"]
        events = api.call("GET", "/api/v1/audit").json()["events"]
        [audited] = [e for e in events if e["action"] == "notification.subscribed"]
        assert audited["actor"].startswith("token:admin-")
        assert audited["detail"]["target"] == receiver.url.removesuffix("/hook")
        assert SECRET not in str(events)


def test_each_subscription_has_its_filter_and_its_secret(
    database_url: str,
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    acme = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    other = f"hf://other/tiny@{hub.add_repo('other/tiny', model_files(fill=2)).refs['main']}"
    with serving(database_url) as api, another_receiver() as second:
        api.scan(acme)
        api.scan(other)
        _subscribe(api, url=receiver.url, secret=SECRET, publisher="acme")
        made = _subscribe(api, url=second.url, publisher="other")
        generated = made["secret"]
        assert isinstance(generated, str) and len(generated) >= 32
        assert generated not in api.call("GET", SUBSCRIPTIONS).text
        # The same URL again is a conflict.
        again = api.call("POST", SUBSCRIPTIONS, json={"url": receiver.url, "secret": SECRET})
        assert again.status_code == 409, again.text

        _ban(api, "publisher", "acme")
        _ban(api, "publisher", "other")
        run_pass(api.service, poll=False)
        assert [r["body"]["data"]["subject"] for r in receiver.received] == [acme]
        assert [r["body"]["data"]["subject"] for r in second.received] == [other]
        assert receiver.received[0]["signed"]
        # The second is signed with its own, generated, secret (not the first's).
        [got] = second.received
        assert not got["signed"]
        assert verify_signature(generated, got["header"], got["raw"], now=time.time())


def test_a_removed_subscription_is_sent_nothing_more(
    database_url: str,
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    tiny = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    receiver.script = [500]
    with serving(database_url) as api:
        api.scan(tiny)
        made = _subscribe(api, url=receiver.url, secret=SECRET)["subscription"]
        _ban(api, "model", "acme/tiny")
        run_pass(api.service, poll=False)  # answered 500: pending, retried later
        assert [(n["status"], n["attempts"]) for n in _log(api)] == [("pending", 1)]
        removed = api.call("DELETE", f"{SUBSCRIPTIONS}/{made['id']}")
        assert removed.status_code == 200, removed.text
        assert removed.json()["subscription"]["id"] == made["id"]
        [logged] = _log(api)
        assert (logged["status"], logged["attempts"]) == ("failed", 1)
        assert "removed" in logged["last_error"]
        assert api.call("DELETE", f"{SUBSCRIPTIONS}/{made['id']}").status_code == 404
        assert api.call("GET", SUBSCRIPTIONS).json()["subscriptions"] == []
        _ban(api, "publisher", "acme")
        run_pass(api.service, poll=False)
        assert len(receiver.received) == 1  # the one attempt before it was removed
        actions = [e["action"] for e in api.call("GET", "/api/v1/audit").json()["events"]]
        assert "notification.unsubscribed" in actions


def test_the_server_flag_is_one_subscription(
    database_url: str,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    with serving(database_url, notify_urls=(receiver.url,), notify_secret=SECRET) as api:
        [flag] = api.call("GET", SUBSCRIPTIONS).json()["subscriptions"]
        assert (flag["id"], flag["url"], flag["configured_by"]) == (None, receiver.url, "flag")
        assert flag["events"] == sorted(e.value for e in NotificationEvent)
        taken = api.call("POST", SUBSCRIPTIONS, json={"url": receiver.url, "secret": SECRET})
        assert taken.status_code == 409 and "--notify-url" in taken.json()["detail"]


def test_bad_subscriptions_are_refused(database_url: str) -> None:
    with serving(database_url) as api:
        for body in (
            {"url": "http://hooks.example/x"},  # plain http off loopback
            {"url": "https://u:p@hooks.example/x"},
            {"url": "https://hooks.example/x", "secret": "short"},
            {"url": "https://hooks.example/x", "events": []},
            {"url": "https://hooks.example/x", "events": ["scan.done"]},
            {"url": "https://hooks.example/x", "waiver_days": 366},
            {"url": "https://hooks.example/x", "environment": "nowhere"},
            {"url": "https://hooks.example/x", "publisher": " "},
            {"url": "https://hooks.example/x", "extra": 1},
        ):
            refused = api.call("POST", SUBSCRIPTIONS, json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert api.call("GET", SUBSCRIPTIONS).json()["subscriptions"] == []


def test_what_a_subscription_wants() -> None:
    subscription = new_subscription(
        "https://hooks.example/x",
        secret=SECRET,
        events=["decision.changed", "waiver.expiring"],
        waiver_days=7,
        environment="production",
        publisher="acme",
    )
    assert isinstance(subscription, Subscription)
    change = {"subject": "hf://acme/tiny@" + "1" * 40, "environment": "production"}
    assert subscription.wants(NotificationEvent.DECISION_CHANGED, change)
    assert not subscription.wants(
        NotificationEvent.DECISION_CHANGED, {**change, "environment": "staging"}
    )
    assert not subscription.wants(
        NotificationEvent.DECISION_CHANGED, {**change, "subject": "hf://other/x@" + "1" * 40}
    )
    assert not subscription.wants(NotificationEvent.CRITICAL_FINDINGS, change)
    waiver = {"subject": "hf://acme/*", "days_left": 7}
    assert subscription.wants(NotificationEvent.WAIVER_EXPIRING, waiver)
    assert not subscription.wants(NotificationEvent.WAIVER_EXPIRING, {**waiver, "days_left": 8})
    with pytest.raises(UsageError, match="secret"):
        new_subscription("https://hooks.example/x", secret="", events=["x"], waiver_days=1)


def test_the_command_line_adds_lists_and_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = ["--database-url", f"sqlite:///{tmp_path / 'v.db'}"]
    runner = CliRunner()
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    added = runner.invoke(
        cli,
        [
            "notify",
            "add",
            "https://hooks.example/verifier",
            "--event",
            "decision.changed",
            "--publisher",
            "acme",
            "--secret-env",
            "HOOK_SECRET",
            *database,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "subscription 1" in added.output and SECRET not in added.output
    made = runner.invoke(cli, ["notify", "add", "https://hooks.example/other", *database])
    assert made.exit_code == 0, made.output
    secret = made.output.strip().splitlines()[-1]
    assert len(secret) >= 32
    listed = runner.invoke(cli, ["notify", "list", *database])
    assert listed.exit_code == 0
    lines = listed.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2"]
    assert "publisher acme" in lines[0] and secret not in listed.output
    again = runner.invoke(cli, ["notify", "add", "https://hooks.example/verifier", *database])
    assert again.exit_code == 2 and "already" in again.output
    bad = runner.invoke(cli, ["notify", "add", "http://hooks.example/x", *database])
    assert bad.exit_code == 2 and "https" in bad.output
    unset = runner.invoke(
        cli, ["notify", "add", "https://hooks.example/y", "--secret-env", "NOPE", *database]
    )
    assert unset.exit_code == 2 and "NOPE" in unset.output
    assert runner.invoke(cli, ["notify", "remove", "1", *database]).exit_code == 0
    assert runner.invoke(cli, ["notify", "remove", "1", *database]).exit_code == 2
    listed = runner.invoke(cli, ["notify", "list", *database])
    assert [line.split("\t")[0] for line in listed.stdout.strip().splitlines()] == ["2"]
