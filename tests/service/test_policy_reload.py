"""Policy changes noticed while the server runs: `POST /api/v1/policies/reload` and the upkeep
pass reading the policy files and the publisher registry again (verifier.service.upkeep)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api
from tests.service.test_upkeep import STRICT, serving
from tests.sources.test_huggingface import model_files
from verifier.service.decisions import PolicySet
from verifier.service.model import Role
from verifier.service.upkeep import run_pass

LENIENT = STRICT.replace("name: strict", "name: lenient").replace("default: deny", "default: allow")

ACME = """\
version: 1
publishers:
  acme:
    legal_entity: Acme Models Inc.
    country: US
    source: https://acme.example/about
    reviewed: 2026-11-01
"""

OTHER = ACME.replace("acme:", "someone-else:")

ON_RECORD = """\
version: 1
name: on-record
default: allow
rules:
  - id: publishers-on-record
    effect: deny
    severity: high
    message: the publisher needs a legal entity and jurisdiction on record
    match:
      publisher_known: false
"""


def _changes(api: Api) -> list[dict[str, Any]]:
    response = api.call("GET", "/api/v1/decision-changes", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["changes"]
    return found


def _decision(api: Api, target: str) -> str:
    response = api.call("GET", f"/api/v1/decision?target={target}", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    return str(response.json()["decision"])


def _reloads(api: Api) -> list[dict[str, Any]]:
    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    return [e for e in events if e["action"] == "policy.reloaded"]


def test_an_admin_reload_decides_every_recorded_model_again(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    target = f"hf://acme/tiny@{repo.refs['main']}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT)
    with serving(database_url, policy) as api:
        assert api.scan(target)["result"]["decision"] == "allow"
        before = api.service.policies.digest
        requests = len(hub.requests)

        policy.write_text(STRICT)
        for role in (Role.VIEWER, Role.SCANNER, Role.APPROVER):
            refused = api.call("POST", "/api/v1/policies/reload", role=role)
            assert refused.status_code == 403, refused.text
        assert api.call("POST", "/api/v1/policies/reload", role=None).status_code == 401
        assert api.service.policies.digest == before  # nothing reloaded by those

        response = api.call("POST", "/api/v1/policies/reload", role=Role.ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["changed"], body["policy"], body["redecided"]) == (True, "strict", 1)
        assert body["policy_digest_before"] == before
        assert body["policy_digest"] == api.service.policies.digest != before
        [changed] = body["changes"]
        assert (changed["subject"], changed["previous"], changed["decision"]) == (
            target,
            "allow",
            "deny",
        )
        assert changed["cause"] == "policy"
        [change] = _changes(api)
        assert (change["cause"], change["policy"], change["actor"]) == (
            "policy",
            "strict",
            "server",
        )
        assert _decision(api, target) == "deny"
        assert len(hub.requests) == requests  # decided from the stored facts: nothing fetched
        [event] = _reloads(api)
        assert event["actor"].startswith("token:admin-")
        assert event["subject"] == "strict"
        assert event["detail"] == {"before": before, "after": body["policy_digest"]}

        # The same files again: nothing changes, nothing is recorded.
        again = api.call("POST", "/api/v1/policies/reload", role=Role.ADMIN).json()
        assert (again["changed"], again["redecided"], again["changes"]) == (False, 0, [])
        assert len(_changes(api)) == 1 and len(_reloads(api)) == 1


def test_a_file_that_no_longer_reads_leaves_the_policy_in_use(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    target = f"hf://acme/tiny@{repo.refs['main']}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT)
    with serving(database_url, policy) as api:
        api.scan(target)
        digest = api.service.policies.digest
        for broken in ("version: 1\nname: [unclosed\n", LENIENT.replace("allow", "maybe", 1)):
            policy.write_text(broken)
            response = api.call("POST", "/api/v1/policies/reload", role=Role.ADMIN)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            done = run_pass(api.service)  # logged; the pass goes on with the policy it has
            assert done is not None and done.redecided == []
            assert api.service.policies.digest == digest
            assert _decision(api, target) == "allow"
        policy.write_text(LENIENT.replace("default: allow", "default: allow\nmode: dry-run"))
        response = api.call("POST", "/api/v1/policies/reload", role=Role.ADMIN)
        assert response.status_code == 422 and "dry-run" in response.json()["detail"]
        assert api.service.policies.digest == digest
        assert _changes(api) == [] and _reloads(api) == []


def test_the_upkeep_pass_notices_a_changed_policy_file(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    target = f"hf://acme/tiny@{repo.refs['main']}"
    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT)
    with serving(database_url, policy) as api:
        api.scan(target)
        done = run_pass(api.service, poll=False)
        assert done is not None and done.redecided == []
        policy.write_text(STRICT)
        done = run_pass(api.service, poll=False)
        assert done is not None
        [redecided] = done.redecided
        assert (redecided.subject, redecided.cause.value, redecided.changed) == (
            target,
            "policy",
            True,
        )
        assert _decision(api, target) == "deny"
        [event] = _reloads(api)
        assert event["actor"] == "server"
        done = run_pass(api.service, poll=False)
        assert done is not None and done.redecided == []


def test_a_changed_publisher_registry_is_noticed_too(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files(), card_data={"license": "apache-2.0"})
    target = f"hf://acme/tiny@{repo.refs['main']}"
    registry = tmp_path / "publishers.yaml"
    registry.write_text(OTHER)
    policy = tmp_path / "policy.yaml"
    policy.write_text(ON_RECORD)
    with serving(database_url, policy, publishers_path=registry) as api:
        scanned = api.scan(target)["result"]
        assert scanned["decision"] == "deny"
        assert [r["rule_id"] for r in scanned["policy"]["reasons"]] == ["publishers-on-record"]
        registry.write_text(ACME)
        body = api.call("POST", "/api/v1/policies/reload", role=Role.ADMIN).json()
        assert (body["changed"], body["policy"]) == (True, "on-record")
        assert [(c["previous"], c["decision"], c["cause"]) for c in body["changes"]] == [
            ("deny", "allow", "policy")
        ]
        assert _decision(api, target) == "allow"


def test_a_job_asked_before_a_reload_is_decided_with_the_policy_since(
    database_url: str, tmp_path: Path
) -> None:
    from verifier.store.database import Store

    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT)
    policies = PolicySet(policy)
    store = Store.open(database_url)
    try:
        old = policies.current(store).digest
        policy.write_text(STRICT)
        outcome = policies.reload(store)
        assert outcome.changed and outcome.before == old
        snapshot = policies.current(store)
        assert snapshot.digest == outcome.after and snapshot.name == "strict"
        assert snapshot.is_earlier_digest(old)
        assert not snapshot.is_earlier_digest("sha256:" + "0" * 64)
    finally:
        store.close()
