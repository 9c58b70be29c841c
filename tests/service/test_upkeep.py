"""Keeping decisions current without a request: start-up re-decision, expired waivers, and
watches polled on the Hub emulator (verifier.service.upkeep)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient
from packaging.version import Version

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api, add_token
from tests.sources.test_huggingface import model_files
from verifier import __version__
from verifier import cli as cli_module
from verifier.cli import cli
from verifier.policy import default_policy_path
from verifier.redecide import lapsed_waiver
from verifier.service.app import create_app
from verifier.service.core import Service, ServiceConfig
from verifier.service.decisions import gate
from verifier.service.model import RESCAN_PER_PASS, Role
from verifier.service.rescans import scanned_by_older
from verifier.service.upkeep import LOCK_NAME, refresh_decisions, run_pass
from verifier.store.service_records import try_exclusive

STRICT = """\
version: 1
name: strict
default: deny
rules:
  - id: no-critical
    effect: deny
    severity: critical
    message: critical findings block the model
    match:
      finding_severity_at_least: critical
"""

WAIVED = """\
version: 1
name: waived
default: allow
rules:
  - id: no-acme
    effect: deny
    severity: high
    message: acme models need a waiver
    match:
      model_in: ["acme/*"]
waivers:
  - id: acme-trial
    rule: no-acme
    subject: hf://acme/tiny@{commit}
    expires: {expires}
    approved_by: secteam
    ticket: SEC-1
    justification: a trial
"""


@contextmanager
def serving(database_url: str, policy: Path | None = None, **config: Any) -> Iterator[Api]:
    """The service with `policy` (default: the shipped one), started and stopped around the
    block (its start-up refreshes the decisions)."""
    service = Service(
        ServiceConfig(
            database_url=database_url, policy_path=policy or default_policy_path(), **config
        )
    )
    tokens = {
        role: add_token(service, f"{role.value}-{uuid.uuid4().hex[:8]}", role) for role in Role
    }
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


def _changes(api: Api) -> list[dict[str, Any]]:
    response = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["changes"]
    return found


def _decision(api: Api, target: str) -> str:
    response = api.call("GET", f"/api/v1/decision?target={target}", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    return str(response.json()["decision"])


def test_a_new_policy_decides_every_recorded_model_again_at_start_up(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    target = f"hf://acme/tiny@{repo.refs['main']}"
    with serving(database_url) as api:
        assert api.scan(target)["result"]["decision"] == "allow"
        assert _changes(api) == []
    strict = tmp_path / "strict.yaml"
    strict.write_text(STRICT)
    with serving(database_url, strict) as api:
        [change] = _changes(api)
        assert (change["subject"], change["previous"], change["decision"]) == (
            target,
            "allow",
            "deny",
        )
        assert (change["cause"], change["policy"], change["actor"]) == (
            "policy",
            "strict",
            "server",
        )
        assert change["detail"] == {"policy_digest": api.service.policies.digest}
        assert _decision(api, target) == "deny"
    # Started again with the same policy: every model is decided under it already.
    with serving(database_url, strict) as api:
        assert len(_changes(api)) == 1
        assert refresh_decisions(api.service) == []
    # Back to the first policy: decided again, the change back recorded too.
    with serving(database_url) as api:
        newest = _changes(api)[0]
        assert (newest["previous"], newest["decision"], newest["cause"]) == (
            "deny",
            "allow",
            "policy",
        )


def test_a_decision_that_an_expired_waiver_allowed_is_decided_again(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    commit = repo.refs["main"]
    target = f"hf://acme/tiny@{commit}"
    today = datetime.now(UTC).date()
    policy = tmp_path / "waived.yaml"
    policy.write_text(WAIVED.format(commit=commit, expires=today + timedelta(days=1)))
    with serving(database_url, policy) as api:
        scanned = api.scan(target)["result"]
        assert scanned["decision"] == "allow"
        assert [w["status"] for w in scanned["policy"]["waivers"]] == ["applied"]
        assert refresh_decisions(api.service) == []  # nothing expired yet

        later = datetime.now(UTC) + timedelta(days=3)
        # The gate never serves the recorded allow once its waiver expired, even before the
        # upkeep decided again.
        answer = gate(api.service.store, api.service.policies, target, environment=None, now=later)
        assert answer.decision.value == "deny"
        [redecided] = refresh_decisions(api.service, now=later)
        assert (redecided.subject, redecided.changed, redecided.cause.value) == (
            target,
            True,
            "waiver",
        )
        [change] = _changes(api)
        assert (change["previous"], change["decision"], change["cause"]) == (
            "allow",
            "deny",
            "waiver",
        )
        # Recorded: the next pass finds nothing stale.
        assert refresh_decisions(api.service, now=later) == []


def test_lapsed_waiver_reads_applied_waivers_only() -> None:
    today = date(2026, 12, 4)
    assert not lapsed_waiver([], today=today)
    assert not lapsed_waiver([("applied", "2026-12-04")], today=today)
    assert lapsed_waiver([("applied", "2026-12-03")], today=today)
    assert not lapsed_waiver([("expired", "2026-12-01"), ("unused", "2020-01-01")], today=today)
    assert lapsed_waiver([("applied", "not a date")], today=today)


def _watch(api: Api) -> dict[str, Any]:
    response = api.call("GET", "/api/v1/watches", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    [watch] = response.json()["watches"]
    return dict(watch)


def test_a_polled_watch_moves_only_once_the_new_commit_is_scanned(
    database_url: str, hub: HubEmulator
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    first = repo.refs["main"]
    with serving(database_url) as api:
        made = api.call(
            "POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny"}
        )
        assert made.status_code == 201, made.text
        api.service.runner.drain()
        assert _watch(api)["commit"] == first
        done = run_pass(api.service)
        assert done is not None and done.queued == []  # the Hub has nothing new

        second = repo.commit(model_files(fill=2))
        done = run_pass(api.service)
        assert done is not None
        [queued] = done.queued
        assert queued["target"] == f"hf://acme/tiny@{second}"
        audit = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
        assert audit[0]["actor"] == "watch-poll"
        api.service.runner.drain()
        assert _watch(api)["commit"] == second
        assert _decision(api, f"hf://acme/tiny@{second}") == "allow"

        # A commit whose scan fails (the Hub gates the repository meanwhile): the watch
        # stays, and polling does not ask for that commit again.
        third = repo.commit(model_files(fill=3))
        done = run_pass(api.service)
        assert done is not None and [q["target"] for q in done.queued] == [
            f"hf://acme/tiny@{third}"
        ]
        repo.gated = "manual"
        api.service.runner.drain()
        repo.gated = False
        assert _watch(api)["commit"] == second
        job = api.call("GET", f"/api/v1/scans/{done.queued[0]['job']}", role=Role.VIEWER)
        assert job.json()["status"] == "failed"
        done = run_pass(api.service)
        assert done is not None and done.queued == []


def test_a_watch_the_hub_cannot_resolve_is_skipped(database_url: str, hub: HubEmulator) -> None:
    with serving(database_url) as api:
        api.call("POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/gone"})
        api.service.runner.drain()
        done = run_pass(api.service)
        assert done is not None and done.queued == []


def test_one_server_at_a_time_keeps_decisions_current(database_url: str) -> None:
    with serving(database_url) as api:
        with try_exclusive(api.service.store, LOCK_NAME) as taken:
            assert taken
            assert run_pass(api.service) is None
        assert run_pass(api.service) is not None


def test_the_server_polls_on_its_interval(database_url: str, hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    with serving(database_url, upkeep_seconds=0.05) as api:
        api.call("POST", "/api/v1/watches", role=Role.SCANNER, json={"target": "hf://acme/tiny"})
        second = repo.commit(model_files(fill=2))
        # Wait (bounded) for the server's own passes to find the new commit and scan it;
        # the assertion is on what happened, never on how long it took.
        deadline = time.monotonic() + 120
        while _watch(api)["commit"] != second and time.monotonic() < deadline:
            api.service.runner.drain()
            time.sleep(0.05)
        assert _watch(api)["commit"] == second


def test_serve_refuses_an_upkeep_interval_that_would_hammer_the_hub() -> None:
    result = CliRunner().invoke(cli, ["serve", "--upkeep-interval", "1"])
    assert result.exit_code == 2
    assert "--upkeep-interval" in result.output and "at least 10" in result.output


def test_models_scanned_by_another_version_are_scanned_again(
    database_url: str, hub: HubEmulator
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:  # re-scans are on by default
        old = api.scan(subject)["scan_id"]
        # As if an older scanner had made that scan, and had denied the model.
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE scans SET tool_version = '0.0.1' WHERE id = :id"), {"id": old}
            )
            connection.execute(
                sa.text("UPDATE decisions SET decision = 'deny' WHERE scan_id = :id"), {"id": old}
            )
        done = run_pass(api.service)
        assert done is not None
        [rescan] = done.rescans
        assert (rescan["target"], rescan["tool_version"]) == (subject, "0.0.1")
        api.service.runner.drain()
        [change] = _changes(api)
        assert (change["previous"], change["decision"], change["cause"]) == (
            "deny",
            "allow",
            "scanner",
        )
        assert change["detail"]["previous_scan"] == old
        assert change["detail"]["previous_tool_version"] == "0.0.1"
        # model_files() holds no weights that fingerprint: no fingerprint either side.
        assert change["detail"]["previous_fingerprint_version"] is None
        assert change["detail"]["fingerprint_version"] is None
        assert change["actor"] == f"rescan:{__version__}"  # kept bytes only
        assert _decision(api, subject) == "allow"
        # The newest scan is by this version now: nothing more to re-scan.
        again = run_pass(api.service)
        assert again is not None and again.rescans == [] and again.rescans_held == []
    with serving(database_url, rescan_per_pass=0) as api:  # the operator turned them off
        with api.service.store._engine.begin() as connection:
            connection.execute(sa.text("UPDATE scans SET tool_version = '0.0.1'"))
        done = run_pass(api.service)
        assert done is not None and done.rescans == [] and done.rescans_held == []


def test_the_command_line_default_is_the_services() -> None:
    assert cli_module.RESCAN_PER_PASS == RESCAN_PER_PASS > 0
    assert ServiceConfig(database_url="sqlite://", policy_path=Path("p")).rescan_per_pass > 0


@pytest.mark.parametrize(
    ("recorded", "running", "older"),
    [
        ("0.0.1", "0.1.0", True),
        ("0.9.0", "0.10.0", True),  # by number, not by text
        ("0.10.0", "0.9.0", False),  # a newer server's scan, during a rolling upgrade
        ("0.1.0", "0.1.0", False),
        ("0.1.0rc1", "0.1.0", True),
        ("0.1.0", "0.1.0rc1", False),
        ("0.1.0+local.2", "0.1.0", False),
        ("test", "0.1.0", True),  # unparseable: fail closed, scanned again (once)
        ("", "0.1.0", True),
    ],
)
def test_only_scans_by_an_older_version_are_scanned_again(
    recorded: str, running: str, older: bool
) -> None:
    assert scanned_by_older(recorded, Version(running)) is older


def test_a_scan_by_a_newer_version_is_left_alone(database_url: str, hub: HubEmulator) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url) as api:
        old = api.scan(subject)["scan_id"]
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE scans SET tool_version = '999.0' WHERE id = :id"), {"id": old}
            )
        done = run_pass(api.service)
        assert done is not None and done.rescans == [] and done.rescans_held == []


def test_a_model_is_scanned_again_once_per_version(database_url: str, hub: HubEmulator) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, rescan_from_hub=True) as api:
        old = api.scan(subject)["scan_id"]
        with api.service.store._engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE scans SET tool_version = '0.0.1' WHERE id = :id"), {"id": old}
            )
        hub.repos["acme/tiny"].gated = "manual"  # the re-scan (which asks the Hub) fails
        done = run_pass(api.service)
        assert done is not None and len(done.rescans) == 1
        api.service.runner.drain()
        hub.repos["acme/tiny"].gated = False
        again = run_pass(api.service)
        assert again is not None and again.rescans == []  # asked once for this version
        assert _changes(api) == []
