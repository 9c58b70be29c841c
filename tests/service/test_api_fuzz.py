"""Arbitrary targets, queries and bodies never make the service fail (no 5xx, no traceback)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import Api
from verifier.service.model import Role

#: Statuses the API answers with on purpose; 5xx would be a bug (or an unreachable store).
EXPECTED = {200, 202, 401, 403, 404, 405, 413, 422}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
targets = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda a, b, rev: f"hf://{a}/{b}{rev}",
        st.text(max_size=12),
        st.text(max_size=12),
        st.sampled_from(["", "@main", "@" + "0" * 40, ":" + "1" * 40, "@..", "@a b"]),
    ),
)


def check(response: Any) -> None:
    assert response.status_code in EXPECTED, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        document = response.json()
        assert document["status"] == response.status_code and document["detail"]
        assert "Traceback" not in response.text


@FUZZ
@given(
    target=targets,
    environment=st.none() | st.text(max_size=10),
    policy=st.none() | st.text(max_size=10),
)
def test_scan_requests(api: Api, target: str, environment: str | None, policy: str | None) -> None:
    body = {"target": target, "environment": environment, "policy": policy}
    check(api.call("POST", "/api/v1/scans", role=Role.SCANNER, json=body))
    api.service.runner.drain()


@FUZZ
@given(target=targets, environment=st.none() | st.text(max_size=10))
def test_decision_queries(api: Api, target: str, environment: str | None) -> None:
    params = (
        {"target": target}
        if environment is None
        else {"target": target, "environment": environment}
    )
    check(api.call("GET", "/api/v1/decision", role=Role.VIEWER, params=params))


@FUZZ
@given(
    document=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "apiVersion": st.just("admission.k8s.io/v1"),
                "kind": st.just("AdmissionReview"),
                "request": st.fixed_dictionaries(
                    {
                        "uid": st.text(max_size=8),
                        "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE", "x"]),
                    },
                    optional={"object": json_values, "kind": json_values, "namespace": json_values},
                ),
            }
        ),
    )
)
def test_admission_bodies(api: Api, document: Any) -> None:
    response = api.call(
        "POST",
        "/api/v1/admission",
        role=Role.VIEWER,
        content=json.dumps(document),
        headers={"Content-Type": "application/json"},
    )
    check(response)


@FUZZ
@given(path=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40))
def test_job_ids_and_paths(api: Api, path: str) -> None:
    check(api.call("GET", f"/api/v1/scans/{path}", role=Role.VIEWER))
    check(api.call("GET", f"/api/v1/models?limit={path}", role=Role.VIEWER))
