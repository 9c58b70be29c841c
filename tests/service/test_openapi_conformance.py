"""schemathesis against the served `/openapi.json`: no 5xx, and every answer has a status, a
content type and a body its route documents (problem documents included), on bounded
examples of valid and invalid requests."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hub_emulator import HubEmulator
from tests.service.conftest import free_port, start
from tests.sources.test_huggingface import model_files
from verifier.bans import BanKind
from verifier.redecide import apply_ban_change
from verifier.service.app import create_app
from verifier.service.core import Service
from verifier.service.model import Role
from verifier.store.bans import BanRecords
from verifier.store.watches import WatchRecords

#: Examples per route and kind (valid, invalid): bounded for the suite's time (about 20 s).
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _seed(service: Service, hub: HubEmulator) -> None:
    """Records for the reading routes to answer with: a scanned model, a ban and its lift (so
    decision changes), a watch."""
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    target = f"hf://acme/tiny@{commit}"
    job = service.submit_scan(target, policy=None, environment=None, actor="seed")
    service.runner.drain()
    assert service.job_document(job.job_id)["status"] == "complete"
    records = BanRecords(service.store)
    policies = service.policies.current(service.store).each()
    ban = records.add_ban(BanKind.MODEL, "acme/tiny", reason="seed", actor="seed")
    apply_ban_change(service.store, ban, policies, actor="seed", lifted=False)
    lifted = records.lift_ban(ban.ban_id, reason="seed", actor="seed")
    apply_ban_change(service.store, lifted, policies, actor="seed", lifted=True)
    WatchRecords(service.store).add_watch("acme/tiny", "main", actor="seed")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app under uvicorn on loopback and an admin token, so that every route is reached
    past its token check, over a few records (the Hub emulator knows one model: the scans
    schemathesis queues fail, as they may)."""
    folder = tmp_path_factory.mktemp("schemathesis")
    with pytest.MonkeyPatch.context() as patch, HubEmulator() as hub:
        patch.setenv("HF_HOME", str(folder / "hf-home"))
        service, tokens = start(f"sqlite:///{folder / 'verifier.db'}", hub_endpoint=hub.endpoint)
        for url in _serve(service):
            _seed(service, hub)
            yield url, tokens[Role.ADMIN]


def _serve(service: Service) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        thread.join(0.02)
    assert server.started, "the test server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def test_every_route_answers_as_its_openapi_document_says(served: tuple[str, str]) -> None:
    url, token = served
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers=auth)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @given(case=cases)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, headers=auth, checks=CHECKS)

        answers_as_documented()
        checked.append(operation.label)
    assert "GET /api/v1/decision" in checked and "POST /api/v1/waivers" in checked
    assert len(checked) >= 20, checked


@pytest.mark.parametrize(
    "path",
    [
        # Regression: both were 500 (OverflowError in the database driver), found by the test
        # above: an integer past 64 bits reached SQLite.
        "/api/v1/models?offset=99999999999999999999999",
        "/api/v1/bans/282529430058326757327503360/lift",
    ],
)
def test_an_integer_past_64_bits_is_refused(served: tuple[str, str], path: str) -> None:
    url, token = served
    method = "POST" if path.endswith("/lift") else "GET"
    body = {"reason": "r"} if method == "POST" else None
    response = httpx.request(
        method, url + path, json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
