"""The policy in force across servers sharing one database, and kept answers under it.

Two app instances (two `Service`s, as two server processes or hosts would have) share one
SQLite file or one PostgreSQL database. A reload on one of them must stop the other from
serving answers decided under the old policy (kept or not), and the admission webhook must
answer from the same kept answers as `GET /api/v1/decision`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api
from tests.service.test_api import review
from tests.service.test_policy_reload import LENIENT
from tests.service.test_upkeep import STRICT, serving
from tests.sources.test_huggingface import model_files
from verifier.service import core
from verifier.service.decisions import GateAnswer
from verifier.service.gate_cache import today
from verifier.service.model import GateDecision, Role


def _answer(api: Api, target: str) -> dict[str, Any]:
    response = api.call("GET", "/api/v1/decision", role=Role.VIEWER, params={"target": target})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _admit(api: Api, *uris: str) -> dict[str, Any]:
    document = review(*uris)
    response = api.call("POST", "/api/v1/admission", role=Role.VIEWER, json=document)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    assert body["response"]["uid"] == document["request"]["uid"]  # type: ignore[index]
    found: dict[str, Any] = body["response"]
    return found


def _kept(api: Api, target: str) -> bytes | None:
    service = api.service
    count, digest = service.change_count(), service.policies.digest
    return service.gate_cache.answer((target, None), count=count, day=today(), digest=digest)


@contextlib.contextmanager
def _two_servers(database_url: str, first: Path, second: Path) -> Iterator[tuple[Api, Api]]:
    with serving(database_url, first) as one, serving(database_url, second) as other:
        yield one, other


@pytest.fixture
def recheck_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server whose files are not in force reads them again on every request (not only
    every `POLICY_RECHECK_SECONDS`): no test waits for a clock."""
    monkeypatch.setattr(core, "POLICY_RECHECK_SECONDS", 0.0)


def test_a_reload_on_one_server_retires_the_kept_answers_of_another(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    target = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    policy = tmp_path / "policy.yaml"  # one file both servers read (one host, two processes)
    policy.write_text(LENIENT)
    with _two_servers(database_url, policy, policy) as (one, other):
        assert one.scan(target)["result"]["decision"] == "allow"
        for api in (one, other):
            assert _answer(api, target)["decision"] == "allow"
            assert _kept(api, target) is not None  # served from memory from now on
            assert _admit(api, target)["allowed"] is True
        before = other.service.policies.digest

        policy.write_text(STRICT)
        reloaded = one.call("POST", "/api/v1/policies/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["changed"] is True

        # The other server never served the old policy's answer again: it read the files
        # (now the ones in force) and decides with them.
        answer = _answer(other, target)
        assert answer["decision"] == "deny"
        assert answer["policy"] == "strict" and answer["policy_digest"] != before
        assert answer["policy_digest"] == one.service.policies.digest
        assert _admit(other, target)["allowed"] is False
        assert _answer(one, target)["decision"] == "deny"


def test_a_server_whose_files_were_not_rolled_out_answers_unknown(
    database_url: str, hub: HubEmulator, tmp_path: Path, recheck_now: None
) -> None:
    target = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    here, there = tmp_path / "here.yaml", tmp_path / "there.yaml"  # two hosts' copies
    here.write_text(LENIENT)
    there.write_text(LENIENT)
    with _two_servers(database_url, here, there) as (one, other):
        assert one.scan(target)["result"]["decision"] == "allow"
        assert _answer(other, target)["decision"] == "allow"
        assert _kept(other, target) is not None

        here.write_text(STRICT)  # rolled out to the first host only
        assert one.call("POST", "/api/v1/policies/reload").json()["changed"] is True
        answer = _answer(other, target)
        assert answer["decision"] == "unknown"
        [reason] = answer["reasons"]
        assert reason["rule_id"] == "service.policy-not-in-force"
        assert "roll the policy files out to this server" in reason["message"]
        assert _kept(other, target) is None  # such an answer is never kept
        refused = _admit(other, target)
        assert (
            refused["allowed"] is False and "not the one in force" in refused["status"]["message"]
        )
        # An admin's reload of the other server changes nothing: its files did not change.
        again = other.call("POST", "/api/v1/policies/reload")
        assert again.status_code == 200 and again.json()["changed"] is False
        assert _answer(other, target)["decision"] == "unknown"

        there.write_text(STRICT)  # rolled out: read again by itself
        assert _answer(other, target)["decision"] == "deny"
        assert _admit(other, target)["allowed"] is False


def test_the_newest_start_puts_its_files_in_force(
    database_url: str, hub: HubEmulator, tmp_path: Path, recheck_now: None
) -> None:
    target = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(STRICT)
    new.write_text(STRICT.replace("default: deny", "default: allow"))
    with serving(database_url, old) as first:
        assert first.scan(target)["result"]["decision"] == "deny"
        assert _answer(first, target)["decision"] == "deny"
        with serving(database_url, new) as second:  # a rolling restart with the new file
            assert _answer(second, target)["decision"] == "allow"
            assert _answer(first, target)["decision"] == "unknown"


def test_admission_answers_from_the_kept_answers(
    database_url: str, hub: HubEmulator, marker_dir: Path
) -> None:
    clean = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files(fill=1)).refs['main']}"
    files = model_files(fill=2)  # no blob in common: a ban of one does not reach the other
    files["model.pkl"] = os_system(marker_dir)
    evil = f"hf://acme/evil@{hub.add_repo('acme/evil', files).refs['main']}"
    with serving(database_url) as api:
        assert api.scan(clean)["result"]["decision"] == "allow"
        assert api.scan(evil)["result"]["decision"] == "deny"
        service = api.service
        assert _admit(api, clean)["allowed"] is True
        count, digest = service.change_count(), service.policies.digest
        kept = service.gate_cache.gate((clean, None), count=count, day=today(), digest=digest)
        assert kept is not None and kept.decision is GateDecision.ALLOW

        # What is kept is what admission answers with (a forged entry shows it is read).
        forged = GateAnswer(
            decision=GateDecision.DENY,
            target=clean,
            environment=None,
            policy_name=service.policies.name,
            policy_digest=digest,
            mode="enforce",
            reasons=({"rule_id": "forged", "effect": "deny", "message": "forged for the test"},),
        )
        service.gate_cache.keep_gate((clean, None), forged, count=count, day=today(), digest=digest)
        refused = _admit(api, clean)
        assert refused["allowed"] is False and "forged for the test" in refused["status"]["message"]

        # Any change moves the counter: the forged entry is gone, the answer is the gate's.
        ban = {"kind": "model", "value": "hf://acme/evil", "reason": "sanctioned"}
        assert api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=ban).status_code == 201
        assert _admit(api, clean)["allowed"] is True
        both = _admit(api, clean, evil)
        assert both["allowed"] is False and "sanctioned" in both["status"]["message"]
        # Fail closed as before: never scanned, not pinned, not a Hub model.
        never = _admit(api, f"hf://acme/never@{'3' * 40}")
        assert never["allowed"] is False and "unknown" in never["status"]["message"]
        assert "not pinned" in _admit(api, "hf://acme/tiny")["status"]["message"]
        assert not _admit(api, "s3://bucket/model")["allowed"]
