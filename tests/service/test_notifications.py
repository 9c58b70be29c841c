"""Outgoing notifications against a receiver on loopback that checks every signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api
from tests.service.test_upkeep import WAIVED, serving
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.errors import UsageError
from verifier.notifications import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    check_notify_url,
    retry_delay,
    sign,
    verify_signature,
)
from verifier.policy import default_policy_path
from verifier.service.core import Service, ServiceConfig
from verifier.service.model import Role
from verifier.service.upkeep import run_pass

SECRET = "a-notification-secret-for-tests"


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers from `script` (then 200), checks signatures."""

    script: list[int] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    #: Paths hit that no notification should ever reach (a redirect's target).
    stray: list[str] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/hook":
                    receiver.stray.append(self.path)
                    self._answer(200)
                    return
                header = self.headers.get(SIGNATURE_HEADER) or ""
                fields = dict(part.partition("=")[::2] for part in header.split(","))
                # Checked here by hand, not only with verifier's own helper.
                expected = hmac.new(
                    SECRET.encode(), fields.get("t", "").encode() + b"." + body, hashlib.sha256
                ).hexdigest()
                receiver.received.append(
                    {
                        "body": json.loads(body),
                        "raw": body,
                        "header": header,
                        "event": self.headers.get("X-Verifier-Event"),
                        "signed": hmac.compare_digest(expected, fields.get("v1", "")),
                        "fresh": abs(time.time() - int(fields.get("t", "0"))) < 300,
                    }
                )
                status = receiver.script.pop(0) if receiver.script else 200
                if status == 302:
                    self.send_response(302)
                    self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._answer(status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
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


def _documented_check() -> Callable[..., bool]:
    """The receiver's check as docs/service.md shows it (so the docs cannot drift)."""
    text = (Path(__file__).parents[2] / "docs" / "service.md").read_text()
    [block] = [b.split("```", 1)[0] for b in text.split("```python\n")[1:] if "def verified" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, "docs/service.md", "exec"), namespace)
    check: Callable[..., bool] = namespace["verified"]
    return check


def _notifying(database_url: str, receiver: Receiver, **config: Any) -> Any:
    return serving(database_url, notify_urls=(receiver.url,), notify_secret=SECRET, **config)


def _log(api: Api) -> list[dict[str, Any]]:
    response = api.call("GET", "/api/v1/notifications", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["notifications"]
    return found


def test_a_decision_change_is_delivered_signed(
    database_url: str, hub: HubEmulator, receiver: Receiver
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    target = f"hf://acme/tiny@{repo.refs['main']}"
    with _notifying(database_url, receiver) as api:
        api.scan(target)
        banned = api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "model", "value": "acme/tiny", "reason": "<b>front</b>"},
        )
        assert banned.status_code == 201, banned.text
        done = run_pass(api.service, poll=False)
        assert done is not None and len(done.delivered) == 1
        [got] = receiver.received
        assert got["signed"] and got["fresh"] and got["event"] == "decision.changed"
        data = got["body"]["data"]
        assert (data["subject"], data["previous"], data["decision"], data["cause"]) == (
            target,
            "allow",
            "deny",
            "ban",
        )
        assert verify_signature(SECRET, got["header"], got["raw"], now=time.time())
        documented = _documented_check()
        assert documented(SECRET.encode(), got["header"], got["raw"])
        assert not documented(SECRET.encode(), got["header"], got["raw"] + b" ")
        # Another body, another secret, or the same delivery replayed later: refused.
        assert not verify_signature(SECRET, got["header"], got["raw"] + b" ", now=time.time())
        assert not verify_signature(SECRET + "x", got["header"], got["raw"], now=time.time())
        assert not verify_signature(SECRET, got["header"], got["raw"], now=time.time() + 3600)
        [logged] = _log(api)
        assert (logged["status"], logged["attempts"], logged["last_status"]) == (
            "delivered",
            1,
            200,
        )
        assert logged["target"] == receiver.url.removesuffix("/hook")  # the origin only
        # Delivered once: the next pass sends nothing.
        again = run_pass(api.service, poll=False)
        assert again is not None and again.delivered == [] and len(receiver.received) == 1


def test_a_failed_delivery_is_retried_with_back_off(
    database_url: str, hub: HubEmulator, receiver: Receiver, marker_dir: Path
) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    repo = hub.add_repo("acme/evil", files)
    receiver.script = [500, 503]
    with _notifying(database_url, receiver) as api:
        api.scan(f"hf://acme/evil@{repo.refs['main']}")
        start = datetime.now(UTC)
        first = run_pass(api.service, poll=False, now=start)
        assert first is not None and [a.status for _, a in first.delivered] == [500]
        [logged] = _log(api)
        assert logged["event"] == "finding.critical"
        assert (logged["status"], logged["attempts"]) == ("pending", 1)
        assert logged["data"]["findings"] and logged["data"]["subject"].startswith(
            "hf://acme/evil@"
        )
        # Not due yet: nothing is sent.
        early = run_pass(api.service, poll=False, now=start + timedelta(seconds=10))
        assert early is not None and early.delivered == []
        second = run_pass(api.service, poll=False, now=start + timedelta(seconds=31))
        assert second is not None and [a.status for _, a in second.delivered] == [503]
        assert _log(api)[0]["attempts"] == 2
        # The second wait is twice the first.
        waiting = run_pass(api.service, poll=False, now=start + timedelta(seconds=31 + 59))
        assert waiting is not None and waiting.delivered == []
        third = run_pass(api.service, poll=False, now=start + timedelta(seconds=31 + 61))
        assert third is not None and [a.delivered for _, a in third.delivered] == [True]
        assert len(receiver.received) == 3 and all(r["signed"] for r in receiver.received)
        assert {r["body"]["id"] for r in receiver.received} == {_log(api)[0]["id"]}
        assert _log(api)[0]["status"] == "delivered"


def test_a_redirect_is_never_followed(
    database_url: str, hub: HubEmulator, receiver: Receiver
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    receiver.script = [302] * MAX_ATTEMPTS
    with _notifying(database_url, receiver) as api:
        api.scan(f"hf://acme/tiny@{repo.refs['main']}")
        api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "publisher", "value": "acme", "reason": "test"},
        )
        moment = datetime.now(UTC)
        for _ in range(MAX_ATTEMPTS):
            run_pass(api.service, poll=False, now=moment)
            moment += timedelta(hours=2)
        [logged] = _log(api)
        assert (logged["status"], logged["attempts"], logged["last_status"]) == (
            "failed",
            MAX_ATTEMPTS,
            302,
        )
        assert "redirect" in logged["last_error"]
        assert receiver.stray == []
        assert len(receiver.received) == MAX_ATTEMPTS


def test_waivers_expiring_soon_are_told_once(
    database_url: str, hub: HubEmulator, receiver: Receiver, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    today = datetime.now(UTC).date()
    policy = tmp_path / "waived.yaml"
    policy.write_text(WAIVED.format(commit=repo.refs["main"], expires=today + timedelta(days=3)))
    with _notifying(database_url, receiver, policy=policy) as api:
        run_pass(api.service, poll=False)
        run_pass(api.service, poll=False)
        [got] = receiver.received
        assert got["event"] == "waiver.expiring" and got["signed"]
        assert got["body"]["data"]["id"] == "acme-trial"
        assert got["body"]["data"]["days_left"] == 3


def test_history_before_a_url_was_configured_is_not_sent(
    database_url: str, hub: HubEmulator, receiver: Receiver
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    with serving(database_url) as api:
        api.scan(f"hf://acme/tiny@{repo.refs['main']}")
        api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "model", "value": "acme/tiny", "reason": "test"},
        )
    with _notifying(database_url, receiver) as api:
        run_pass(api.service, poll=False)
        assert receiver.received == [] and _log(api) == []


def test_notifications_are_configured_safely(sqlite_url: str) -> None:
    def start(**config: Any) -> None:
        Service(
            ServiceConfig(database_url=sqlite_url, policy_path=default_policy_path(), **config)
        ).close()

    with pytest.raises(UsageError, match="VERIFIER_NOTIFY_SECRET"):
        start(notify_urls=("https://hooks.example/x",))
    with pytest.raises(UsageError, match="VERIFIER_NOTIFY_SECRET"):
        start(notify_urls=("https://hooks.example/x",), notify_secret="short")
    for bad in ("http://hooks.example/x", "ftp://x/y", "https://u:p@hooks.example/x", "x"):
        with pytest.raises(UsageError):
            check_notify_url(bad)
    assert check_notify_url("http://127.0.0.1:8000/hook")
    assert [retry_delay(n) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert retry_delay(50) == 3600.0
    assert sign("k" * 16, b"{}", timestamp=5).startswith("t=5,v1=")


def test_serve_refuses_notifications_without_deliveries() -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--notify-url", "https://hooks.example/x", "--notify-interval", "0"]
    )
    assert result.exit_code == 2 and "--notify-interval" in result.output
