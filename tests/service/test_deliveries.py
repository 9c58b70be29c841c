"""Notifications are sent without upkeep passes: a delivery thread of their own, on by default
in `verifier serve`, and the subscription answers say when a server sends none. Tested against
the loopback receiver of tests/service/test_notifications.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import free_port
from tests.service.test_notifications import SECRET, Receiver, receiver  # noqa: F401
from tests.service.test_upkeep import serving
from tests.service.test_workers import DEADLINE_SECONDS, wait_for
from tests.sources.test_huggingface import model_files
from verifier.cli import DELIVERY_SECONDS, cli
from verifier.notifications import verify_signature
from verifier.policy import default_policy_path
from verifier.service import notify
from verifier.service.core import Service, ServiceConfig
from verifier.service.model import Role

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIPTIONS = "/api/v1/notifications/subscriptions"


def _evil(hub: HubEmulator, marker_dir: Path) -> str:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    return f"hf://acme/evil@{hub.add_repo('acme/evil', files).refs['main']}"


def test_notifications_are_sent_without_upkeep_passes(
    database_url: str,
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
    marker_dir: Path,
) -> None:
    tiny = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    evil = _evil(hub, marker_dir)
    # No upkeep pass ever runs; only the delivery thread can send.
    with serving(database_url, upkeep_seconds=0, delivery_seconds=0.2) as api:
        made = api.call("POST", SUBSCRIPTIONS, json={"url": receiver.url, "secret": SECRET})
        assert made.status_code == 201, made.text
        assert made.json()["deliveries"]["enabled"] is True
        assert made.json()["deliveries"]["every_seconds"] == 0.2
        api.scan(tiny)
        api.scan(evil)
        banned = api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "model", "value": "acme/tiny", "reason": "a test"},
        )
        assert banned.status_code == 201, banned.text
        wait_for("two notifications", lambda: len(receiver.received) >= 2)
        events = sorted(got["event"] for got in receiver.received)
        assert events == ["decision.changed", "finding.critical"]
        for got in receiver.received:
            assert got["signed"] and got["fresh"]
            assert verify_signature(SECRET, got["header"], got["raw"], now=time.time())
        logged = api.call("GET", "/api/v1/notifications", role=Role.VIEWER).json()
        assert {item["status"] for item in logged["notifications"]} == {"delivered"}
    assert len(receiver.received) == 2  # each sent once


def test_a_server_that_sends_nothing_says_so(
    database_url: str,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    with serving(database_url, upkeep_seconds=30, delivery_seconds=0) as api:
        made = api.call("POST", SUBSCRIPTIONS, json={"url": receiver.url})
        assert made.status_code == 201, made.text
        listed = api.call("GET", SUBSCRIPTIONS)
        assert listed.status_code == 200, listed.text
        for answer in (made.json(), listed.json()):
            deliveries = answer["deliveries"]
            assert (deliveries["enabled"], deliveries["every_seconds"]) == (False, 0)
            assert "--notify-interval" in deliveries["note"]


def test_the_command_line_says_who_sends(tmp_path: Path) -> None:
    database = ["--database-url", f"sqlite:///{tmp_path / 'v.db'}"]
    added = CliRunner().invoke(cli, ["notify", "add", "https://hooks.example/x", *database])
    assert added.exit_code == 0, added.output
    assert "--notify-interval" in added.stderr and "no server runs" in added.stderr
    assert "--notify-interval" not in added.stdout  # stdout stays the subscription and secret
    listed = CliRunner().invoke(cli, ["notify", "list", *database])
    assert listed.exit_code == 0 and "--notify-interval" in listed.stderr


def test_verifier_serve_sends_notifications_by_default(
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
    marker_dir: Path,
    tmp_path: Path,
) -> None:
    """A real `verifier serve` with its default delivery interval, and upkeep passes off: a
    subscription recorded with `verifier notify add` is told of a scan's critical findings."""
    assert DELIVERY_SECONDS > 0
    evil = _evil(hub, marker_dir)
    database = ["--database-url", f"sqlite:///{tmp_path / 'v.db'}"]
    env = {**os.environ, "HOOK_SECRET": SECRET}
    runner = CliRunner()
    added = runner.invoke(
        cli, ["notify", "add", receiver.url, "--secret-env", "HOOK_SECRET", *database], env=env
    )
    assert added.exit_code == 0, added.output
    made = runner.invoke(cli, ["token", "create", "--name", "ci", "--role", "scanner", *database])
    assert made.exit_code == 0, made.output
    headers = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "verifier",
                "serve",
                "--port",
                str(port),
                "--upkeep-interval",
                "0",
                *database,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for("the server to answer", healthy)
        submitted = httpx.post(f"{url}/api/v1/scans", json={"target": evil}, headers=headers)
        assert submitted.status_code == 202, submitted.text
        wait_for("the notification", lambda: receiver.received)
        [got] = receiver.received
        assert got["event"] == "finding.critical" and got["signed"], log.read_text()
        assert got["body"]["data"]["subject"] == evil
        assert f"notifications sent every {DELIVERY_SECONDS:g} s" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: Servers of one database whose delivery passes run at once.
SERVERS = 6


def test_servers_delivering_at_once_send_each_notification_once(
    postgresql_database: str,
    hub: HubEmulator,
    receiver: Receiver,  # noqa: F811 - the fixture
) -> None:
    repos = [f"acme/m{i}" for i in range(3)]
    targets = [f"hf://{repo}@{hub.add_repo(repo, model_files()).refs['main']}" for repo in repos]
    with serving(postgresql_database) as api:
        made = api.call("POST", SUBSCRIPTIONS, json={"url": receiver.url, "secret": SECRET})
        assert made.status_code == 201, made.text
        for target in targets:
            api.scan(target)
        banned = api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "publisher", "value": "acme", "reason": "a test"},
        )
        assert banned.status_code == 201, banned.text
        config = ServiceConfig(database_url=postgresql_database, policy_path=default_policy_path())
        servers = [Service(config) for _ in range(SERVERS)]
        barrier = threading.Barrier(SERVERS)
        failures: list[BaseException] = []

        def deliver(service: Service) -> None:
            try:
                for _ in range(3):
                    barrier.wait()
                    notify.run_pass(service, now=datetime.now(UTC))
            except BaseException as exc:  # reported below, on the test's thread
                failures.append(exc)
                barrier.abort()  # the others stop waiting for this one

        threads = [threading.Thread(target=deliver, args=(server,)) for server in servers]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(DEADLINE_SECONDS)
        finally:
            for server in servers:
                server.close()
        assert [exc for exc in failures if not isinstance(exc, threading.BrokenBarrierError)] == []
        assert failures == []
        ids = [got["body"]["id"] for got in receiver.received]
        subjects = sorted(got["body"]["data"]["subject"] for got in receiver.received)
        assert subjects == sorted(targets)  # one decision change each
        assert len(ids) == len(set(ids)) == len(targets)
