"""Gate answers kept in memory: served only while nothing they came from changed.

Each change the gate depends on (a ban, its lift, a waiver, a new scan, a revoked token, the
day) is made after the answer was kept, and the next request must see it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.policy import default_policy_path
from verifier.service.gate_cache import CoalescedCount, GateCache, today
from verifier.service.model import Role

NEXT_YEAR = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=365)).isoformat()


def _scanned(api: Api, hub: HubEmulator, name: str, files: dict[str, bytes]) -> str:
    commit = hub.add_repo(name, files).refs["main"]
    subject = f"hf://{name}@{commit}"
    api.scan(subject)
    return subject


def _ask(api: Api, subject: str, role: Role = Role.VIEWER) -> tuple[int, bytes]:
    response = api.call("GET", "/api/v1/decision", role=role, params={"target": subject})
    return response.status_code, response.content


def _kept(api: Api, subject: str) -> bytes | None:
    count = api.service.change_count()
    digest = api.service.policies.digest
    return api.service.gate_cache.answer((subject, None), count=count, day=today(), digest=digest)


def _decision(body: bytes) -> str:
    found: dict[str, Any] = json.loads(body)
    return str(found["decision"])


def test_an_answer_is_kept_and_served_unchanged(api: Api, hub: HubEmulator) -> None:
    subject = _scanned(api, hub, "acme/kept", model_files(fill=1))
    first = _ask(api, subject)
    assert first[0] == 200 and _decision(first[1]) == "allow"
    assert _kept(api, subject) == first[1]
    assert _ask(api, subject) == first
    unknown = f"hf://acme/never@{'0' * 40}"
    status, body = _ask(api, unknown)
    assert (status, _decision(body)) == (200, "unknown")
    assert _kept(api, unknown) == body


def test_the_fast_path_serves_only_what_the_counter_and_day_allow(
    api: Api, hub: HubEmulator
) -> None:
    subject = _scanned(api, hub, "acme/forged", model_files(fill=1))
    real = _ask(api, subject)
    cache = api.service.gate_cache
    count = api.service.change_count()
    digest = api.service.policies.digest
    forged = b'{"decision":"forged"}'
    # Kept under an older count, on another day or under another policy: never served.
    cache.keep_answer((subject, None), forged, count=count - 1, day=today(), digest=digest)
    assert _ask(api, subject) == real
    yesterday = today() - dt.timedelta(days=1)
    cache.keep_answer((subject, None), forged, count=count, day=yesterday, digest=digest)
    assert _ask(api, subject) == real
    cache.keep_answer((subject, None), forged, count=count, day=today(), digest="sha256:other")
    assert _ask(api, subject) == real
    # Kept under the current count, day and policy: served as kept (the fast path at work).
    cache.keep_answer((subject, None), forged, count=count, day=today(), digest=digest)
    assert _ask(api, subject) == (200, forged)
    # The same answer for a token with no role to read it, or none: the route's refusals.
    assert _ask(api, subject, role=None)[0] == 401
    other = api.call(
        "GET",
        "/api/v1/decision",
        role=None,
        params={"target": subject},
        headers={"Authorization": "Bearer vrf_not-a-token"},
    )
    assert other.status_code == 401


def test_a_ban_and_its_lift_change_a_kept_answer(api: Api, hub: HubEmulator) -> None:
    subject = _scanned(api, hub, "acme/base", model_files(fill=2))
    assert _decision(_ask(api, subject)[1]) == "allow"
    assert _kept(api, subject) is not None
    body = {"kind": "model", "value": "hf://acme/base", "reason": "sanctioned"}
    made = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
    assert made.status_code == 201, made.text
    assert _kept(api, subject) is None
    assert _decision(_ask(api, subject)[1]) == "deny"
    ban_id = made.json()["ban"]["id"]
    lifted = api.call(
        "POST", f"/api/v1/bans/{ban_id}/lift", role=Role.APPROVER, json={"reason": "cleared"}
    )
    assert lifted.status_code == 200, lifted.text
    assert _decision(_ask(api, subject)[1]) == "allow"


def test_a_ban_from_the_command_line_changes_a_kept_answer_and_is_not_kept(
    api: Api, hub: HubEmulator, tmp_path: Path
) -> None:
    subject = _scanned(api, hub, "acme/model", model_files(fill=3))
    assert _decision(_ask(api, subject)[1]) == "allow"
    # Another policy's ban: nothing re-decides under the server's policy, so the gate decides
    # from the facts at the moment of the request, and such an answer is never kept.
    other = tmp_path / "other.yaml"
    other.write_text(default_policy_path().read_text().replace("name: default", "name: other"))
    result = CliRunner().invoke(
        cli,
        ["ban", "publisher", "acme", "--reason", "r", "--policy", str(other)],
        env={"VERIFIER_DATABASE_URL": api.service.store.display_url},
    )
    assert result.exit_code == 0, result.output
    assert _decision(_ask(api, subject)[1]) == "deny"
    assert _kept(api, subject) is None


def test_a_recorded_waiver_and_its_revocation_change_a_kept_answer(
    api: Api, hub: HubEmulator, marker_dir: Path
) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    subject = _scanned(api, hub, "acme/evil", files)
    before = json.loads(_ask(api, subject)[1])
    assert before["decision"] == "deny" and _kept(api, subject) is not None
    rule = next(r["rule_id"] for r in before["reasons"] if r["effect"] == "deny")
    waiver = {
        "id": "evil-reviewed",
        "rule": rule,
        "subject": subject,
        "expires": NEXT_YEAR,
        "ticket": "SEC-1",
        "justification": "reviewed by hand",
    }
    made = api.call("POST", "/api/v1/waivers", role=Role.APPROVER, json=waiver)
    assert made.status_code == 201, made.text
    after = json.loads(_ask(api, subject)[1])
    assert after["policy_digest"] != before["policy_digest"]
    assert _kept(api, subject) is not None
    reason = {"reason": "the review was wrong"}
    revoked = api.call(
        "POST", "/api/v1/waivers/evil-reviewed/revoke", role=Role.APPROVER, json=reason
    )
    assert revoked.status_code == 200, revoked.text
    assert _kept(api, subject) is None
    final = json.loads(_ask(api, subject)[1])
    assert final["decision"] == "deny"
    assert final["policy_digest"] != after["policy_digest"]


def test_a_new_scan_changes_a_kept_unknown(api: Api, hub: HubEmulator) -> None:
    commit = hub.add_repo("acme/late", model_files(fill=4)).refs["main"]
    subject = f"hf://acme/late@{commit}"
    assert _decision(_ask(api, subject)[1]) == "unknown"
    assert _kept(api, subject) is not None
    api.scan(subject)
    assert _decision(_ask(api, subject)[1]) == "allow"


def test_a_revoked_token_is_refused_at_once(api: Api, hub: HubEmulator) -> None:
    subject = _scanned(api, hub, "acme/tok", model_files(fill=5))
    assert _ask(api, subject)[0] == 200
    assert _ask(api, subject)[0] == 200  # token and answer both kept now
    api.service.records.revoke_token("viewer-token", actor="test")
    status, body = _ask(api, subject)
    assert status == 401, body


def test_kept_entries_are_bounded() -> None:
    cache = GateCache(limit=4)
    for i in range(10):
        cache.keep_answer((f"t{i}", None), b"{}", count=1, day=today(), digest="d")
    kept = [i for i in range(10) if cache.answer((f"t{i}", None), count=1, day=today(), digest="d")]
    assert 0 < len(kept) <= 4 and kept[-1] == 9


def test_concurrent_requests_share_one_read_that_started_after_they_arrived() -> None:
    reads: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def read() -> int:
        number = len(reads) + 1
        reads.append(number)
        started.set()
        assert release.wait(10)
        return number

    async def scenario() -> tuple[list[int], int]:
        count = CoalescedCount(read)
        early = [asyncio.ensure_future(count.read()) for _ in range(50)]
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        # Arrived while the first read is under way: it may predate a change this request
        # must see, so this one waits for a read of its own.
        late = asyncio.ensure_future(count.read())
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(*early)), await late

    early, late = asyncio.run(scenario())
    assert early == [1] * 50
    assert late == 2
    assert reads == [1, 2]


@pytest.mark.parametrize("inline", [False, True])
def test_a_failed_read_reaches_every_waiter(inline: bool) -> None:
    from verifier.errors import StoreError

    def read() -> int:
        raise StoreError("cannot read the change counter")

    async def scenario() -> list[BaseException | int]:
        count = CoalescedCount(read, inline=inline)
        return list(await asyncio.gather(*(count.read() for _ in range(3)), return_exceptions=True))

    assert all(isinstance(result, StoreError) for result in asyncio.run(scenario()))


def test_an_inline_read_is_shared_by_the_requests_waiting_then_made_again() -> None:
    reads: list[int] = []

    def read() -> int:
        reads.append(len(reads) + 1)
        return reads[-1]

    async def scenario() -> tuple[list[int], int]:
        count = CoalescedCount(read, inline=True)
        first = await asyncio.gather(*(count.read() for _ in range(20)))
        return list(first), await count.read()  # arrived after the first read: a read of its own

    first, later = asyncio.run(scenario())
    assert first == [1] * 20 and later == 2 and reads == [1, 2]


def test_a_failing_fast_path_leaves_the_answer_to_the_route(
    api: Api, hub: HubEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _scanned(api, hub, "acme/fallback", model_files(fill=4))
    real = _ask(api, subject)
    assert _kept(api, subject) == real[1]

    def broken(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("a bug in the fast path")

    monkeypatch.setattr(api.service.gate_cache, "answer", broken)
    assert _ask(api, subject) == real


def test_a_server_process_freezes_what_it_made_at_start(database_url: str) -> None:
    from fastapi.testclient import TestClient

    from verifier.service.app import create_app
    from verifier.service.core import Service, ServiceConfig

    def service() -> Service:
        return Service(ServiceConfig(database_url=database_url, policy_path=default_policy_path()))

    try:
        with TestClient(create_app(service(), freeze_gc=True)):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    with TestClient(create_app(service())):
        assert gc.get_freeze_count() == 0  # tests and other hosts of the app: nothing frozen


@pytest.mark.parametrize("query", ["target=a&target=b", "target=a&x=1", "environment=e", ""])
def test_odd_queries_go_to_the_route(api: Api, query: str) -> None:
    response = api.call("GET", f"/api/v1/decision?{query}", role=Role.VIEWER)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
