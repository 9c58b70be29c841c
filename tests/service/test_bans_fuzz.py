"""Arbitrary ban requests, blast-radius queries and webhook bodies never make the service fail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.service.conftest import Api, start
from tests.service.test_api_fuzz import EXPECTED, FUZZ, check, json_values
from verifier.service.app import create_app
from verifier.service.model import Role

SECRET = "fuzz-secret"
values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["acme/base", "acme/base@" + "a" * 40, "CN", "sha256:" + "b" * 64, "acme"]),
)


@pytest.fixture
def hooked(database_url: str) -> Iterator[Api]:
    """A service with a webhook secret (no Hub: nothing queued here may be fetched)."""
    service, tokens = start(
        database_url, hub_webhook_secret=SECRET, hub_endpoint="http://127.0.0.1:9"
    )
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


@FUZZ
@given(kind=st.sampled_from(["model", "publisher", "jurisdiction", "blob", "x"]), value=values)
def test_ban_requests(api: Api, kind: str, value: str) -> None:
    body = {"kind": kind, "value": value, "reason": "fuzz"}
    response = api.call("POST", "/api/v1/bans", role=Role.APPROVER, json=body)
    assert response.status_code in EXPECTED | {201}, response.text
    if response.status_code != 201:
        check(response)


@FUZZ
@given(parameter=st.sampled_from(["model", "blob", "publisher", "jurisdiction", "x"]), value=values)
def test_blast_radius_queries(api: Api, parameter: str, value: str) -> None:
    path = f"/api/v1/blast-radius?{parameter}={quote(value)}"
    check(api.call("GET", path, role=Role.VIEWER))


@FUZZ
@given(body=json_values, refs=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=41))))
def test_webhook_bodies(hooked: Api, body: Any, refs: list[tuple[str, str]]) -> None:
    for document in (
        body,
        {
            "event": {"action": "update", "scope": "repo.content"},
            "repo": {"type": "model", "name": body if isinstance(body, str) else "acme/tiny"},
            "updatedRefs": [{"ref": r, "newSha": s} for r, s in refs],
        },
    ):
        response = hooked.client.post(
            "/api/v1/hooks/huggingface", json=document, headers={"X-Webhook-Secret": SECRET}
        )
        check(response)
