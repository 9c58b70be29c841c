"""Waivers and approvals over HTTP: the same waivers and countersignatures as the command line."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from model_signing import verifying

from tests.evidence.keys import write_pair
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api, start
from tests.sources.test_huggingface import model_files
from verifier.pipeline import HubOptions
from verifier.policy import default_policy_path, load_policy
from verifier.service.app import create_app
from verifier.service.core import Service
from verifier.service.jobs import JobContext, run_scan_job
from verifier.service.model import JobStatus, Role, ScanJob

NEXT_YEAR = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)).isoformat()


def _denied(api: Api, hub: HubEmulator, marker_dir: Path) -> tuple[str, str]:
    """A model the default policy denies: its subject and the rule that denies it."""
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    commit = hub.add_repo("acme/evil", files).refs["main"]
    subject = f"hf://acme/evil@{commit}"
    assert api.scan(subject)["result"]["decision"] == "deny"
    decision = api.call("GET", f"/api/v1/decision?target={subject}").json()
    denying = [r["rule_id"] for r in decision["reasons"] if r["effect"] == "deny"]
    assert denying
    return subject, denying[0]


def _waiver(subject: str, rule: str, waiver_id: str = "evil-reviewed") -> dict[str, Any]:
    return {
        "id": waiver_id,
        "rule": rule,
        "subject": subject,
        "expires": NEXT_YEAR,
        "ticket": "SEC-1",
        "justification": "reviewed by hand",
    }


def test_a_waiver_recorded_over_http_is_a_waivers_file_waiver(
    api: Api, hub: HubEmulator, marker_dir: Path, tmp_path: Path
) -> None:
    subject, _ = _denied(api, hub, marker_dir)
    before = api.call("GET", f"/api/v1/decision?target={subject}").json()
    # Every rule that denies it is waived (the last one turns the decision).
    denying = [r["rule_id"] for r in before["reasons"] if r["effect"] == "deny"]
    bodies = [_waiver(subject, r, f"evil-{i}") for i, r in enumerate(denying)]
    for body in bodies:
        response = api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body)
        assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["waiver"]["approved_by"] == "token:approver-token"
    assert answer["waiver"]["created_by"] == "token:approver-token"
    assert answer["policy_digest"] != before["policy_digest"]
    assert {(a["subject"], a["decision"], a["cause"]) for a in answer["affected"]} == {
        (subject, "allow", "waiver")
    }

    # The same waivers in a waivers file give the command line the same policy digest.
    waivers_file = tmp_path / "waivers.yaml"
    file_waivers = [{**b, "approved_by": "token:approver-token"} for b in bodies]
    waivers_file.write_text(yaml.safe_dump({"version": 1, "waivers": file_waivers}))
    cli_policy = load_policy(default_policy_path(), waivers=[waivers_file])
    assert cli_policy.digest() == answer["policy_digest"]

    after = api.call("GET", f"/api/v1/decision?target={subject}", role=Role.VIEWER).json()
    assert after["decision"] == "allow" and after["policy_digest"] == answer["policy_digest"]
    assert {w["id"] for w in after["waivers"]} == {b["id"] for b in bodies}
    assert {w["status"] for w in after["waivers"]} == {"applied"}

    listed = api.call("GET", "/api/v1/waivers", role=Role.VIEWER).json()
    assert listed["policy_digest"] == answer["policy_digest"]
    assert [(w["id"], w["source"], w["expired"]) for w in listed["waivers"]] == [
        (b["id"], "service", False) for b in bodies
    ]
    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    added = [e for e in events if e["action"] == "waiver.added"]
    assert [e["detail"]["waiver"] for e in reversed(added)] == [b["id"] for b in bodies]
    assert {(e["actor"], e["subject"]) for e in added} == {("token:approver-token", subject)}

    # A second server on the same database decides with the recorded waivers too.
    other = Service(api.service.config)
    assert other.policies.digest == answer["policy_digest"]
    other.close()


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"expires": None}, 422, "expires"),
        ({"expires": "2020-01-01"}, 422, "in the past"),
        ({"rule": "no-such-rule"}, 422, "has no rule"),
        ({"subject": "hf://acme/evil@main"}, 422, "not an exact subject"),
        ({"id": "Not An Id"}, 422, "id"),
        ({"approved_by": "someone"}, 422, "approved_by"),
        ({"ticket": "x" * 300}, 422, "ticket"),
    ],
)
def test_a_waiver_is_checked(api: Api, change: dict[str, Any], status: int, words: str) -> None:
    body = {**_waiver(f"hf://acme/evil@{'0' * 40}", "no-high-or-critical-findings"), **change}
    body = {key: value for key, value in body.items() if value is not None}
    response = api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words in response.json()["detail"]
    assert api.call("GET", "/api/v1/waivers").json()["waivers"] == []


def test_a_waiver_id_is_used_once(api: Api) -> None:
    rule = load_policy(default_policy_path()).rules[0].id
    body = _waiver(f"hf://acme/evil@{'0' * 40}", rule)
    first = api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body)
    assert first.status_code == 201, first.text
    assert first.json()["affected"] == []  # nothing recorded of that model
    again = api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "used twice" in again.json()["detail"]
    assert len(api.call("GET", "/api/v1/waivers").json()["waivers"]) == 1


def test_a_job_queued_before_a_waiver_is_decided_with_it(
    api: Api, hub: HubEmulator, marker_dir: Path
) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    commit = hub.add_repo("acme/evil2", files).refs["main"]
    service = api.service
    queued = ScanJob(
        job_id="d" * 32,
        target=f"hf://acme/evil2@{commit}",
        policy_name=service.policies.name,
        policy_digest=service.policies.digest,
        environment=service.policies.for_environment(None).environment,
        status=JobStatus.QUEUED,
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    service.records.add_job(queued)  # recorded, not yet run
    rule = load_policy(default_policy_path()).rules[0].id
    waiver = _waiver(f"hf://acme/other@{'0' * 40}", rule)
    assert api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=waiver).status_code == 201
    context = JobContext(
        store=service.store, policies=service.policies, hub=HubOptions(endpoint=hub.endpoint)
    )
    run_scan_job(context, queued.job_id)
    document = api.call("GET", f"/api/v1/scans/{queued.job_id}").json()
    assert document["status"] == "complete", document["error"]
    assert document["policy_digest"] == service.policies.digest != queued.policy_digest
    assert document["result"]["policy"]["digest"] == service.policies.digest


@pytest.fixture
def signing_api(database_url: str, hub: HubEmulator, tmp_path: Path) -> Iterator[tuple[Api, Path]]:
    """The service with an approval key, and the key's public half."""
    private, public = write_pair(tmp_path / "keys", "org", ec.generate_private_key(ec.SECP256R1()))
    service, tokens = start(database_url, approval_key_path=private)
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens), public


def test_an_approval_over_http_is_what_verifier_approve_signs(
    signing_api: tuple[Api, Path], hub: HubEmulator, marker_dir: Path, tmp_path: Path
) -> None:
    api, public = signing_api
    files = model_files()
    commit = hub.add_repo("acme/tiny", files).refs["main"]
    subject = f"hf://acme/tiny@{commit}"
    scan_id = api.scan(subject)["scan_id"]
    response = api.call("POST", "/api/v1/approvals", role=Role.APPROVER, json={"target": subject})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["subject"] == subject and answer["scan_id"] == scan_id
    assert answer["files"] == len(files)

    # The real model_signing accepts the bundle over the model's files.
    model = tmp_path / "model"
    for path, data in files.items():
        (model / path).parent.mkdir(parents=True, exist_ok=True)
        (model / path).write_bytes(data)
    bundle = tmp_path / "model.sig"
    bundle.write_text(json.dumps(answer["bundle"], indent=2) + "\n")
    verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model, bundle)

    shown = api.service.store.get_scan(scan_id)
    assert [a.bundle_sha256 for a in shown.approvals] == [answer["bundle_sha256"]]
    events = api.call("GET", "/api/v1/audit").json()["events"]
    approved = [e for e in events if e["action"] == "approval.recorded"]
    assert [(e["actor"], e["subject"], e["detail"]["scan_id"]) for e in approved] == [
        ("token:approver-token", subject, scan_id)
    ]

    # A denied model, an unpinned or unknown target: refused, nothing recorded.
    evil, _ = _denied(api, hub, marker_dir)
    for target, status in (
        (evil, 409),
        ("hf://acme/tiny@main", 422),
        (f"hf://acme/tiny@{'3' * 40}", 409),
    ):
        refused = api.call("POST", "/api/v1/approvals", role=Role.APPROVER, json={"target": target})
        assert refused.status_code == status, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    events = api.call("GET", "/api/v1/audit").json()["events"]
    assert len([e for e in events if e["action"] == "approval.recorded"]) == 1


def test_a_server_without_an_approval_key_refuses_approvals(api: Api) -> None:
    response = api.call(
        "POST", "/api/v1/approvals", role=Role.APPROVER, json={"target": f"hf://a/b@{'0' * 40}"}
    )
    assert response.status_code == 409
    assert "--approval-key" in response.json()["detail"]


def test_a_waiver_revoked_over_http_ends_at_once(
    api: Api, hub: HubEmulator, marker_dir: Path
) -> None:
    subject, _ = _denied(api, hub, marker_dir)
    before = api.call("GET", f"/api/v1/decision?target={subject}").json()
    denying = [r["rule_id"] for r in before["reasons"] if r["effect"] == "deny"]
    ids = [f"evil-{i}" for i in range(len(denying))]
    for waiver_id, rule in zip(ids, denying, strict=True):
        body = _waiver(subject, rule, waiver_id)
        assert api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body).status_code == 201
    assert api.call("GET", f"/api/v1/decision?target={subject}").json()["decision"] == "allow"

    # Revoking one waiver of those that turned the decision turns it back, with its cause.
    reason = {"reason": "the pickle is still there"}
    revoked = api.call("POST", f"/api/v1/waivers/{ids[0]}/revoke", role=Role.APPROVER, json=reason)
    assert revoked.status_code == 200, revoked.text
    answer = revoked.json()
    assert answer["waiver"]["id"] == ids[0] and answer["reason"] == reason["reason"]
    assert answer["revoked_by"] == "token:approver-token"
    assert {(a["subject"], a["decision"], a["cause"]) for a in answer["affected"]} == {
        (subject, "deny", "waiver")
    }
    after = api.call("GET", f"/api/v1/decision?target={subject}").json()
    assert after["decision"] == "deny" and after["policy_digest"] == answer["policy_digest"]
    assert ids[0] not in {w["id"] for w in api.call("GET", "/api/v1/waivers").json()["waivers"]}

    # Every waiver revoked: the policy is the one before any waiver, here and on a second server.
    for waiver_id in ids[1:]:
        done = api.call(
            "POST", f"/api/v1/waivers/{waiver_id}/revoke", role=Role.APPROVER, json=reason
        )
        assert done.status_code == 200, done.text
    final = api.call("GET", f"/api/v1/decision?target={subject}").json()
    assert final["policy_digest"] == before["policy_digest"] and final["decision"] == "deny"
    other = Service(api.service.config)
    assert other.policies.current(other.store).digest == before["policy_digest"]
    other.close()

    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    ended = [e for e in events if e["action"] == "waiver.revoked"]
    assert sorted(e["detail"]["waiver"] for e in ended) == sorted(ids)
    assert {(e["actor"], e["subject"], e["detail"]["reason"]) for e in ended} == {
        ("token:approver-token", subject, reason["reason"])
    }

    # Once: a second revocation, an unknown id and the same id again are refused.
    again = api.call("POST", f"/api/v1/waivers/{ids[0]}/revoke", role=Role.APPROVER, json=reason)
    assert again.status_code == 409 and "revoked already" in again.json()["detail"]
    unknown = api.call("POST", "/api/v1/waivers/no-such/revoke", role=Role.APPROVER, json=reason)
    assert unknown.status_code == 404 and "policy file" in unknown.json()["detail"]
    body = _waiver(subject, denying[0], ids[0])
    assert api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body).status_code == 409


def test_a_revocation_needs_a_reason(api: Api) -> None:
    rule = load_policy(default_policy_path()).rules[0].id
    body = _waiver(f"hf://acme/evil@{'0' * 40}", rule)
    assert api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=body).status_code == 201
    for bad in ({}, {"reason": ""}, {"reason": "x", "by": "me"}):
        response = api.call(
            "POST", f"/api/v1/waivers/{body['id']}/revoke", role=Role.APPROVER, json=bad
        )
        assert response.status_code == 422, response.text
    assert [w["id"] for w in api.call("GET", "/api/v1/waivers").json()["waivers"]] == [body["id"]]
