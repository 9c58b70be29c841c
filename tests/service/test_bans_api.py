"""Bans through the API: the blast radius before, the ban, the gate after, the lift."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api
from tests.sources.test_huggingface import model_files
from verifier.bans import Ban, BanKind
from verifier.cli import cli
from verifier.model import Verdict
from verifier.policy import default_policy_path
from verifier.service.bans import _apply
from verifier.service.jobs import PAUSE_ENV
from verifier.service.model import Role
from verifier.store.bans import BanRecords


def _child_files(base: str) -> dict[str, bytes]:
    files = model_files(fill=2)
    files["README.md"] = f"---\nlicense: apache-2.0\nbase_model: {base}\n---\n# child\n".encode()
    return files


def _family(api: Api, hub: HubEmulator) -> dict[str, str]:
    """acme/base, its child, and an unrelated model, scanned through the API."""
    hub.add_repo("acme/base", model_files(fill=1))
    hub.add_repo("kid/child", _child_files("acme/base"), card_data={"base_model": "acme/base"})
    hub.add_repo("other/model", model_files(fill=3))
    subjects = {}
    for name in ("acme/base", "kid/child", "other/model"):
        job = api.scan(f"hf://{name}")
        assert job["result"]["decision"] == "allow", job
        subjects[name] = f"hf://{name}@{job['result']['source']['commit']}"
    return subjects


def _decision(api: Api, subject: str) -> dict[str, Any]:
    response = api.call("GET", f"/api/v1/decision?target={subject}", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def test_ban_blast_radius_gate_and_lift(api: Api, hub: HubEmulator) -> None:
    subjects = _family(api, hub)
    preview = api.call("GET", "/api/v1/blast-radius?model=acme/base", role=Role.VIEWER)
    assert preview.status_code == 200, preview.text
    reached = {m["subject"]: m["relation"] for m in preview.json()["models"]}
    assert reached == {subjects["acme/base"]: "named", subjects["kid/child"]: "declared"}

    body = {"kind": "model", "value": "hf://acme/base", "reason": "sanctioned"}
    refused = api.call("POST", "/api/v1/bans", role=Role.SCANNER, json=body)
    assert refused.status_code == 403
    made = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
    assert made.status_code == 201, made.text
    ban = made.json()["ban"]
    assert (ban["value"], ban["banned_by"], ban["active"]) == (
        "acme/base",
        "token:approver-token",
        True,
    )
    assert isinstance(made.json()["registered_bases"], list)
    assert {a["subject"] for a in made.json()["affected"]} == {
        subjects["acme/base"],
        subjects["kid/child"],
    }
    for name in ("acme/base", "kid/child"):
        answer = _decision(api, subjects[name])
        assert answer["decision"] == "deny"
        assert answer["reasons"][0]["rule_id"] == "(ban)"
        assert answer["reasons"][0]["message"] == "banned model acme/base: sanctioned"
    assert _decision(api, subjects["other/model"])["decision"] == "allow"
    changes = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER).json()["changes"]
    assert sorted((c["subject"], c["previous"], c["decision"], c["cause"]) for c in changes) == [
        (subjects["acme/base"], "allow", "deny", "ban"),
        (subjects["kid/child"], "allow", "deny", "ban"),
    ]
    assert {c["detail"]["ban"] for c in changes} == {ban["id"]}
    listed = api.call("GET", "/api/v1/bans", role=Role.VIEWER).json()["bans"]
    assert [b["id"] for b in listed] == [ban["id"]]
    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    assert events[0]["action"] == "ban.added" and events[0]["subject"] == "model acme/base"

    lifted = api.call(
        "POST", f"/api/v1/bans/{ban['id']}/lift", role=Role.APPROVER, json={"reason": "cleared"}
    )
    assert lifted.status_code == 200, lifted.text
    assert {a["decision"] for a in lifted.json()["affected"]} == {"allow"}
    assert _decision(api, subjects["kid/child"])["decision"] == "allow"
    again = api.call(
        "POST", f"/api/v1/bans/{ban['id']}/lift", role=Role.APPROVER, json={"reason": "x"}
    )
    assert again.status_code == 422
    assert api.call("GET", "/api/v1/bans", role=Role.VIEWER).json()["bans"] == []
    everything = api.call("GET", "/api/v1/bans?all=true", role=Role.VIEWER).json()["bans"]
    assert everything[0]["lift_reason"] == "cleared"


def test_the_gate_never_answers_with_a_decision_older_than_a_ban(
    api: Api, hub: HubEmulator, tmp_path: Path
) -> None:
    subjects = _family(api, hub)
    assert _decision(api, subjects["kid/child"])["decision"] == "allow"
    # Banned from the command line with another policy: the decisions it records are not
    # the server's, whose own recorded allow is older than the ban.
    other = tmp_path / "other.yaml"
    other.write_text(default_policy_path().read_text().replace("name: default", "name: other"))
    result = CliRunner().invoke(
        cli,
        ["ban", "publisher", "acme", "--reason", "r", "--policy", str(other)],
        env={"VERIFIER_DATABASE_URL": api.service.store.display_url},
    )
    assert result.exit_code == 0, result.output
    answer = _decision(api, subjects["kid/child"])
    assert answer["decision"] == "deny"
    assert answer["reasons"][0]["message"] == "banned publisher acme: r"
    assert _decision(api, subjects["other/model"])["decision"] == "allow"


def test_a_model_a_ban_reaches_before_its_first_scan_is_denied_by_its_job_and_the_gate(
    api: Api, hub: HubEmulator
) -> None:
    # The service's job decides with the bans in force, as `verifier scan` does: the gate
    # answers from that recorded decision, and no ban was made after it to decide again.
    body = {"kind": "publisher", "value": "acme", "reason": "sanctioned"}
    made = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
    assert made.status_code == 201, made.text
    ban_id = made.json()["ban"]["id"]
    hub.add_repo("acme/late", model_files(fill=1))
    hub.add_repo("kid/late", _child_files("acme/late"), card_data={"base_model": "acme/late"})
    hub.add_repo("other/model", model_files(fill=3))
    subjects = {}
    for name, decision, message in (
        ("acme/late", "deny", "banned publisher acme: sanctioned"),
        ("kid/late", "deny", "banned publisher acme: sanctioned"),
        ("other/model", "allow", None),
    ):
        result = api.scan(f"hf://{name}")["result"]
        subjects[name] = subject = f"hf://{name}@{result['source']['commit']}"
        reasons = result["policy"]["reasons"]
        banned = [r["message"] for r in reasons if r["rule_id"] == "(ban)"]
        assert (result["decision"], banned) == (decision, [message] if message else []), name
        answer = _decision(api, subject)
        # The gate's answer is the job's: the same decision for the same reasons, the ban once.
        assert (answer["decision"], answer["reasons"]) == (decision, reasons), name

    lifted = api.call(
        "POST", f"/api/v1/bans/{ban_id}/lift", role=Role.APPROVER, json={"reason": "cleared"}
    )
    assert lifted.status_code == 200, lifted.text
    for name in ("acme/late", "kid/late"):
        assert _decision(api, subjects[name])["decision"] == "allow"
    changes = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER).json()["changes"]
    assert sorted((c["subject"], c["previous"], c["decision"], c["cause"]) for c in changes) == [
        (subjects["acme/late"], "deny", "allow", "ban-lifted"),
        (subjects["kid/late"], "deny", "allow", "ban-lifted"),
    ]


def _until(what: str, condition: Any) -> None:
    """Wait for `condition` (another thread's progress), failing after a generous minute."""
    for _ in range(6_000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.mark.parametrize("lifted", [False, True], ids=["ban", "lift"])
def test_a_ban_made_while_a_job_records_its_scan_is_in_the_decision_the_gate_answers(
    api: Api, hub: HubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lifted: bool
) -> None:
    # The race: the job looked up the bans in force, then a ban was made (or lifted) before
    # its scan was recorded. The ban's re-decision cannot see a scan not yet recorded, and the
    # decision recorded after it is newer than the ban: unless the job sees the ban, the gate
    # answers with the job's stale decision (an allow, for a banned model).
    body = {"kind": "publisher", "value": "acme", "reason": "sanctioned"}
    if lifted:
        earlier = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
        assert earlier.status_code == 201, earlier.text
    hub.add_repo("acme/racy", model_files(fill=1))
    pause = tmp_path / "pause"
    pause.mkdir()
    monkeypatch.setenv(PAUSE_ENV, str(pause))  # the job waits after deciding, before recording
    asked = api.call("POST", "/api/v1/scans", role=Role.SCANNER, json={"target": "hf://acme/racy"})
    assert asked.status_code == 202, asked.text
    # On PostgreSQL `drain` runs the job in the calling thread: run it beside the test.
    drained = threading.Thread(target=api.service.runner.drain)
    drained.start()
    try:
        _until("the job to pause", (pause / f"paused-{os.getpid()}").exists)
        if lifted:
            ban_id = earlier.json()["ban"]["id"]
            changed = api.call(
                "POST", f"/api/v1/bans/{ban_id}/lift", role=Role.APPROVER, json={"reason": "ok"}
            )
            assert changed.status_code == 200, changed.text
        else:
            changed = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
            assert changed.status_code == 201, changed.text
        assert changed.json()["affected"] == []  # the re-decision did not see the scan
    finally:
        (pause / "release").touch()
        drained.join()
    job = api.call("GET", f"/api/v1/scans/{asked.json()['id']}", role=Role.VIEWER).json()
    assert job["status"] == "complete", job["error"]
    subject = f"hf://acme/racy@{job['result']['source']['commit']}"
    answer = _decision(api, subject)
    banned = [r["message"] for r in answer["reasons"] if r["rule_id"] == "(ban)"]
    if lifted:
        assert (answer["decision"], banned) == ("allow", [])
    else:
        assert (answer["decision"], banned) == ("deny", ["banned publisher acme: sanctioned"])
    assert job["result"]["decision"] == answer["decision"]
    models = api.call("GET", "/api/v1/models", role=Role.VIEWER).json()["models"]
    (model,) = [m for m in models if m["subject"] == subject]
    assert model["decision"] == answer["decision"]


def test_a_ban_made_while_a_lift_is_decided_again_is_in_the_decision_the_gate_answers(
    api: Api, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same window in a re-decision: the lift's re-decision looked up the bans (none in
    # force), then a second ban was made and decided before the lift's decision was
    # recorded. Recorded last, that allow would be the gate's answer for a banned model.
    hub.add_repo("acme/racy", model_files(fill=1))
    result = api.scan("hf://acme/racy")["result"]
    subject = f"hf://acme/racy@{result['source']['commit']}"
    body = {"kind": "publisher", "value": "acme", "reason": "first"}
    first = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
    assert first.status_code == 201, first.text
    made: list[Ban] = []
    looked_up = BanRecords.current_verdict

    def second_ban_in_the_window(
        self: BanRecords, scan_id: str, *, environment: str | None
    ) -> Verdict | None:
        if not made:  # once, as `POST /api/v1/bans` makes and applies it
            made.append(self.add_ban(BanKind.MODEL, "acme/racy", reason="second", actor="t"))
            _apply(api.service, made[0], actor="t", lifted=False)
        return looked_up(self, scan_id, environment=environment)

    monkeypatch.setattr(BanRecords, "current_verdict", second_ban_in_the_window)
    lifted = api.call(
        "POST",
        f"/api/v1/bans/{first.json()['ban']['id']}/lift",
        role=Role.APPROVER,
        json={"reason": "cleared"},
    )
    monkeypatch.undo()
    assert lifted.status_code == 200, lifted.text
    assert made, "the second ban was not made inside the lift's re-decision"
    assert [a["decision"] for a in lifted.json()["affected"]] == ["deny"]
    answer = _decision(api, subject)
    banned = [r["message"] for r in answer["reasons"] if r["rule_id"] == "(ban)"]
    assert (answer["decision"], banned) == ("deny", ["banned model acme/racy: second"])


def test_bad_ban_requests_are_problems(api: Api) -> None:
    for body in (
        {"kind": "model", "value": "acme/base@main", "reason": "r"},
        {"kind": "jurisdiction", "value": "Narnia", "reason": "r"},
        {"kind": "blob", "value": "sha256:xyz", "reason": "r"},
        {"kind": "publisher", "value": "acme", "reason": "   "},
        {"kind": "planet", "value": "mars", "reason": "r"},
    ):
        response = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"
    none = api.call("GET", "/api/v1/blast-radius", role=Role.VIEWER)
    assert none.status_code == 422
    two = api.call("GET", "/api/v1/blast-radius?model=a/b&publisher=a", role=Role.VIEWER)
    assert two.status_code == 422
    assert api.call("GET", "/api/v1/bans", role=Role.VIEWER).json()["bans"] == []
