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

from tests.service.conftest import free_port, start
from verifier.service.app import create_app
from verifier.service.model import Role

#: Examples per route and kind (valid, invalid): bounded for the suite's time (about 20 s).
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app under uvicorn on loopback and an admin token, so that every route is reached
    past its token check (no Hub: the scans it queues fail, as they may)."""
    folder = tmp_path_factory.mktemp("schemathesis")
    service, tokens = start(
        f"sqlite:///{folder / 'verifier.db'}", hub_endpoint="http://127.0.0.1:9"
    )
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
        yield f"http://127.0.0.1:{port}", tokens[Role.ADMIN]
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
