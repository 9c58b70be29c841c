"""The HTTP API: every route against every role, problem documents, scans through the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api, add_token, start
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.service.app import create_app
from verifier.service.model import JobStatus, Role, ScanJob

COMMIT = "0" * 40

#: (method, path, body, role needed); None: anonymous.
ROUTES = [
    ("GET", "/healthz", None, None),
    ("GET", "/openapi.json", None, Role.VIEWER),
    ("POST", "/api/v1/scans", {"target": "hf://acme/tiny@main"}, Role.SCANNER),
    ("GET", "/api/v1/scans/{job}", None, Role.VIEWER),
    ("GET", f"/api/v1/decision?target=hf://acme/tiny@{COMMIT}", None, Role.VIEWER),
    ("POST", "/api/v1/admission", "review", Role.VIEWER),
    ("GET", "/api/v1/audit", None, Role.VIEWER),
    ("GET", "/api/v1/models", None, Role.VIEWER),
    ("GET", f"/api/v1/models/acme/tiny@{COMMIT}", None, Role.VIEWER),
    # Bans: the body names a branch, which is refused after authorising (nothing is banned).
    ("POST", "/api/v1/bans", {"kind": "model", "value": "a/b@main", "reason": "r"}, Role.APPROVER),
    ("POST", "/api/v1/bans/1/lift", {"reason": "r"}, Role.APPROVER),
    ("GET", "/api/v1/bans", None, Role.VIEWER),
    ("GET", "/api/v1/blast-radius?publisher=acme", None, Role.VIEWER),
    ("GET", "/api/v1/decision-changes", None, Role.VIEWER),
    ("GET", "/api/v1/notifications", None, Role.VIEWER),
    ("POST", "/api/v1/watches", {"target": "hf://acme/tiny@main"}, Role.SCANNER),
    ("GET", "/api/v1/watches", None, Role.VIEWER),
    # Waivers: the body's expiry is past, refused after authorising (nothing is recorded).
    ("POST", "/api/v1/waivers", "waiver", Role.APPROVER),
    ("GET", "/api/v1/waivers", None, Role.VIEWER),
    # No such waiver was recorded: refused after authorising.
    ("POST", "/api/v1/waivers/no-such/revoke", {"reason": "r"}, Role.APPROVER),
    # Tokens: a name the service refuses, and a token that does not exist.
    ("POST", "/api/v1/tokens", {"name": "Not A Name", "role": "viewer"}, Role.ADMIN),
    ("GET", "/api/v1/tokens", None, Role.ADMIN),
    ("POST", "/api/v1/tokens/no-such/revoke", None, Role.ADMIN),
    # Approvals: this server has no approval key, refused after authorising.
    ("POST", "/api/v1/approvals", {"target": f"hf://acme/tiny@{COMMIT}"}, Role.APPROVER),
    # Blob collection: a grace period under 1h, refused after authorising (nothing deleted).
    ("POST", "/api/v1/blobs/gc", {"older_than": "5m", "delete": True}, Role.ADMIN),
    ("POST", "/api/v1/policies/reload", None, Role.ADMIN),
    ("GET", "/api/v1/rescans", None, Role.VIEWER),
    # Subscriptions: plain http off loopback, refused after authorising (nothing is recorded).
    ("POST", "/api/v1/notifications/subscriptions", {"url": "http://hooks.example/x"}, Role.ADMIN),
    ("GET", "/api/v1/notifications/subscriptions", None, Role.ADMIN),
    ("DELETE", "/api/v1/notifications/subscriptions/1", None, Role.ADMIN),
]
PAST_WAIVER = {
    "id": "w",
    "rule": "r",
    "subject": f"hf://acme/tiny@{COMMIT}",
    "expires": "2020-01-01",
    "ticket": "T-1",
    "justification": "j",
}
CALLERS = ["anonymous", "unknown", "revoked", *Role]


def review(*uris: str, operation: str = "CREATE", uid: str = "705ab4f5") -> dict[str, object]:
    """A real admission.k8s.io/v1 AdmissionReview of a KServe InferenceService."""
    predictor: dict[str, object] = (
        {"model": {"modelFormat": {"name": "huggingface"}, "storageUri": uris[0]}}
        if uris
        else {"containers": [{"name": "custom", "image": "example/server:1"}]}
    )
    spec: dict[str, object] = {"predictor": predictor}
    if len(uris) > 1:
        spec["transformer"] = {"containers": [{"name": "t", "image": "example/t:1"}]}
        spec["explainer"] = {"storageUris": [{"uri": u, "mountPath": "/mnt/x"} for u in uris[1:]]}
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "tiny", "namespace": "models"},
        "spec": spec,
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {
                "group": "serving.kserve.io",
                "version": "v1beta1",
                "kind": "InferenceService",
            },
            "resource": {
                "group": "serving.kserve.io",
                "version": "v1beta1",
                "resource": "inferenceservices",
            },
            "name": "tiny",
            "namespace": "models",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": isvc if operation != "DELETE" else None,
            "oldObject": isvc if operation == "DELETE" else None,
            "dryRun": False,
        },
    }


@pytest.fixture(scope="module")
def table_api(tmp_path_factory: pytest.TempPathFactory) -> object:
    """One service for the whole role table (no Hub: nothing it is asked runs a scan)."""
    folder = tmp_path_factory.mktemp("roles")
    service, tokens = start(
        f"sqlite:///{folder / 'verifier.db'}", hub_endpoint="http://127.0.0.1:9"
    )
    tokens_by_caller: dict[str, str] = {str(r): s for r, s in tokens.items()}
    tokens_by_caller["unknown"] = "vrf_" + "A" * 43
    tokens_by_caller["revoked"] = add_token(service, "gone", Role.ADMIN)
    service.records.revoke_token("gone", actor="test")
    # A job that is never run, for the job route.
    job = ScanJob(
        job_id="f" * 32,
        target="hf://acme/tiny@main",
        policy_name=service.policies.name,
        policy_digest="sha256:other",
        environment=None,
        status=JobStatus.FAILED,
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
        error="never ran",
    )
    service.records.add_job(job)
    with TestClient(create_app(service)) as client:
        yield client, tokens_by_caller, job.job_id


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize(("method", "path", "body", "needed"), ROUTES, ids=lambda r: str(r))
def test_every_route_for_every_role(
    table_api: tuple[TestClient, dict[str, str], str],
    method: str,
    path: str,
    body: object,
    needed: Role | None,
    caller: str,
) -> None:
    client, tokens, job_id = table_api
    headers = {} if caller == "anonymous" else {"Authorization": f"Bearer {tokens[caller]}"}
    payload = {"review": review(f"hf://acme/tiny@{COMMIT}"), "waiver": PAST_WAIVER}.get(
        str(body), body
    )
    if method == "POST" and needed is Role.SCANNER and body is not None:
        # A target the service refuses after authorising: nothing is ever queued here.
        payload = {"target": "hf://acme/tiny@main", "environment": "no-such-environment"}
    response = client.request(method, path.format(job=job_id), headers=headers, json=payload)
    if needed is None:
        assert response.status_code == 200
        return
    if caller in ("anonymous", "unknown", "revoked"):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"] == "application/problem+json"
        return
    if not Role(caller).allows(needed):
        assert response.status_code == 403
        assert f"needs {needed.value}" in response.json()["detail"]
        return
    refused = {
        Role.SCANNER: 422,
        Role.APPROVER: 404 if path.endswith(("/lift", "/revoke")) else 422,
        Role.ADMIN: 404 if path.endswith("/revoke") else 422 if body is not None else 200,
    }
    expected = refused.get(needed, 200)
    if path == "/api/v1/approvals":
        expected = 409  # authorised, and this server has no approval key
    if path.startswith("/api/v1/models/"):
        expected = 404  # authorised, and nothing is recorded of that commit
    if path.startswith("/api/v1/notifications/subscriptions"):
        expected = {"POST": 422, "DELETE": 404}.get(method, 200)  # refused, or none recorded
    assert response.status_code == expected, response.text


def test_problem_documents(api: Api) -> None:
    cases = [
        (api.call("GET", "/nowhere"), 404, "Not Found"),
        (api.call("DELETE", "/api/v1/audit"), 405, "Method Not Allowed"),
        (api.call("GET", "/api/v1/scans/" + "a" * 32), 404, "no scan job has the id"),
        (api.call("GET", "/api/v1/scans/..%2f..%2fetc"), 404, ""),
        (
            api.call("POST", "/api/v1/scans", json={"target": "/etc/passwd"}),
            422,
            "never reads local paths",
        ),
        (api.call("POST", "/api/v1/scans", json={"target": "file:///etc"}), 422, "Hub models only"),
        (api.call("POST", "/api/v1/scans", json={"target": "hf://a b/c"}), 422, "printable ASCII"),
        (api.call("POST", "/api/v1/scans", json={"target": "hf://../x"}), 422, "expected hf://"),
        (api.call("POST", "/api/v1/scans", json={"target": "x" * 300}), 422, "target:"),
        (api.call("POST", "/api/v1/scans", json={"target": "hf://a/b", "extra": 1}), 422, "extra"),
        (
            api.call("POST", "/api/v1/scans", json={"target": "hf://a/b", "policy": "lax"}),
            422,
            "policy 'default' only",
        ),
        (api.call("POST", "/api/v1/scans", content=b"{not json"), 422, ""),
        (
            api.call("GET", "/api/v1/decision?target=hf://acme/tiny@main"),
            422,
            "is not pinned to a commit",
        ),
        (api.call("GET", "/api/v1/decision"), 422, "target: Field required"),
        (
            api.call("GET", f"/api/v1/decision?target=hf://acme/tiny@{COMMIT}&environment=mars"),
            422,
            "no environment 'mars'",
        ),
        (
            api.call("POST", "/api/v1/admission", json={"kind": "Pod"}),
            422,
            "not an AdmissionReview",
        ),
        (api.call("POST", "/api/v1/scans", content=b"x" * (2 << 20)), 413, "larger than"),
        (api.call("GET", "/api/v1/audit?limit=0"), 422, "limit"),
    ]
    for response, status, detail in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        document = response.json()
        assert set(document) == {"type", "title", "status", "detail"}
        assert document["status"] == status and detail in document["detail"] + document["title"]
        assert "Traceback" not in response.text


def test_a_scan_through_the_api_is_what_the_cli_prints(api: Api, hub: HubEmulator) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    commit = repo.refs["main"]
    response = api.call(
        "POST", "/api/v1/scans", role=Role.SCANNER, json={"target": "hf://acme/tiny"}
    )
    assert response.status_code == 202
    assert response.json()["status"] in ("queued", "running", "complete")
    assert response.headers["location"] == f"/api/v1/scans/{response.json()['id']}"
    api.service.runner.drain()
    job = api.call("GET", f"/api/v1/scans/{response.json()['id']}", role=Role.VIEWER).json()
    assert job["status"] == "complete" and job["error"] is None
    shown = CliRunner().invoke(
        cli,
        [
            "show",
            job["scan_id"],
            "--format",
            "json",
            "--database-url",
            api.service.store.display_url,
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert job["result"] == json.loads(shown.stdout)
    assert job["result"]["decision"] == "allow" and job["result"]["source"]["commit"] == commit

    # The same commit under the same policy: answered at once, nothing fetched again.
    downloads = len(hub.downloads())
    again = api.call(
        "POST", "/api/v1/scans", role=Role.SCANNER, json={"target": f"hf://acme/tiny@{commit}"}
    )
    assert again.status_code == 200
    assert again.json()["status"] == "complete" and again.json()["scan_id"] == job["scan_id"]
    assert len(hub.downloads()) == downloads

    decision = api.call(
        "GET", f"/api/v1/decision?target=hf://acme/tiny@{commit}", role=Role.VIEWER
    ).json()
    assert decision["decision"] == "allow" and decision["scan_id"] == job["scan_id"]
    assert decision["policy_digest"] == job["policy_digest"]
    unknown = api.call(
        "GET", f"/api/v1/decision?target=hf://acme/tiny@{'1' * 40}", role=Role.VIEWER
    ).json()
    assert unknown["decision"] == "unknown" and unknown["scan_id"] is None
    assert "no recorded scan" in unknown["reasons"][0]["message"]

    events = api.call("GET", "/api/v1/audit", role=Role.VIEWER).json()["events"]
    requested = [e for e in events if e["action"] == "scan.requested"]
    assert [e["actor"] for e in requested] == ["token:scanner-token"] * 2
    assert {e["subject"] for e in requested} == {"hf://acme/tiny", f"hf://acme/tiny@{commit}"}


def test_a_failed_scan_job_reports_its_error(api: Api) -> None:
    job = api.scan("hf://acme/missing")
    assert job["status"] == "failed" and job["result"] is None
    assert "acme/missing" in job["error"] and "\n" not in job["error"]


def test_denied_and_admission(api: Api, hub: HubEmulator, marker_dir: Path) -> None:
    clean = hub.add_repo("acme/tiny", model_files()).refs["main"]
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    evil = hub.add_repo("acme/evil", files).refs["main"]
    assert api.scan(f"hf://acme/tiny@{clean}")["result"]["decision"] == "allow"
    denied = api.scan(f"hf://acme/evil@{evil}")
    assert denied["status"] == "complete" and denied["result"]["decision"] == "deny"
    decision = api.call("GET", f"/api/v1/decision?target=hf://acme/evil@{evil}").json()
    assert decision["decision"] == "deny" and decision["reasons"]

    inventory = api.call("GET", "/api/v1/models", role=Role.VIEWER).json()
    assert inventory["limit"] == 100 and inventory["offset"] == 0
    models = inventory["models"]
    assert [(m["repo_id"], m["commit"], m["decision"], m["status"]) for m in models] == [
        ("acme/evil", evil, "deny", "complete"),
        ("acme/tiny", clean, "allow", "complete"),
    ]
    assert models[0]["findings"] >= 1 and models[0]["scan_id"] == denied["scan_id"]
    assert models[0]["publisher"] == {
        "namespace": "acme",
        "known": False,
        "legal_entity": None,
        "jurisdiction": None,
    }
    assert "signature" in models[0] and models[0]["policy_digest"] == denied["policy_digest"]
    page = api.call("GET", "/api/v1/models?limit=1&offset=1", role=Role.VIEWER).json()
    assert [m["repo_id"] for m in page["models"]] == ["acme/tiny"]

    def admit(document: dict[str, object]) -> dict[str, object]:
        response = api.call("POST", "/api/v1/admission", role=Role.VIEWER, json=document)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
        assert body["response"]["uid"] == document["request"]["uid"]  # type: ignore[index]
        result: dict[str, object] = body["response"]
        return result

    allowed = admit(review(f"hf://acme/tiny@{clean}"))
    assert allowed["allowed"] is True
    assert admit(review(f"hf://acme/tiny:{clean}"))["allowed"] is True  # KServe's pin
    refused = admit(review(f"hf://acme/evil:{evil}"))
    assert refused["allowed"] is False and refused["status"]["code"] == 403  # type: ignore[index]
    assert "spec.predictor.model.storageUri" in refused["status"]["message"]  # type: ignore[index]
    unpinned = admit(review("hf://acme/tiny"))
    message = unpinned["status"]["message"]  # type: ignore[index]
    assert unpinned["allowed"] is False
    assert "not pinned to a commit" in message and "hf://acme/tiny:<40-hex commit>" in message
    unknown = admit(review(f"hf://acme/tiny@{'2' * 40}"))
    assert unknown["allowed"] is False and "unknown" in unknown["status"]["message"]  # type: ignore[index]
    other = admit(review("s3://bucket/model"))
    assert other["allowed"] is False and "not a Hub model" in other["status"]["message"]  # type: ignore[index]
    mixed = admit(review(f"hf://acme/tiny@{clean}", f"hf://acme/evil@{evil}"))
    assert mixed["allowed"] is False
    assert "spec.explainer.storageUris[0].uri" in mixed["status"]["message"]  # type: ignore[index]
    deletion = admit(review(f"hf://acme/evil@{evil}", operation="DELETE"))
    assert deletion["allowed"] is True and "warnings" not in deletion
    assert admit(review())["warnings"]
    production = api.call(
        "POST",
        "/api/v1/admission?environment=nowhere",
        role=Role.VIEWER,
        json=review(f"hf://acme/tiny@{clean}"),
    )
    assert production.status_code == 422


def test_a_job_queued_before_a_restart_runs_after_it(sqlite_url: str, hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    service, tokens = start(sqlite_url)
    job = ScanJob(
        job_id="e" * 32,
        target="hf://acme/tiny",
        policy_name=service.policies.name,
        policy_digest=service.policies.digest,
        environment=service.policies.for_environment(None).environment,
        status=JobStatus.RUNNING,  # the previous server died while running it
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    service.records.add_job(job)
    with TestClient(create_app(service)) as client:
        service.runner.drain()
        headers = {"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
        document = client.get(f"/api/v1/scans/{job.job_id}", headers=headers).json()
    assert document["status"] == "complete" and document["result"]["decision"] == "allow"


def test_openapi_lists_every_route(api: Api) -> None:
    document = api.call("GET", "/openapi.json", role=Role.VIEWER).json()
    assert set(document["paths"]) == {
        "/healthz",
        "/api/v1/scans",
        "/api/v1/scans/{job_id}",
        "/api/v1/decision",
        "/api/v1/admission",
        "/api/v1/audit",
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/bans",
        "/api/v1/bans/{ban_id}/lift",
        "/api/v1/blast-radius",
        "/api/v1/decision-changes",
        "/api/v1/watches",
        "/api/v1/hooks/huggingface",
        "/api/v1/waivers",
        "/api/v1/waivers/{waiver_id}/revoke",
        "/api/v1/approvals",
        "/api/v1/notifications",
        "/api/v1/blobs/gc",
        "/api/v1/tokens",
        "/api/v1/tokens/{name}/revoke",
        "/api/v1/notifications/subscriptions",
        "/api/v1/notifications/subscriptions/{subscription_id}",
        "/api/v1/policies/reload",
        "/api/v1/rescans",
    }
    assert "HTTPBearer" in document["components"]["securitySchemes"]


def test_one_model_is_its_record(api: Api, hub: HubEmulator, marker_dir: Path) -> None:
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    commit = hub.add_repo("acme/evil", files).refs["main"]
    first = api.scan(f"hf://acme/evil@{commit}")
    # A second scan of the same commit, through the command line's own path.
    rescanned = CliRunner().invoke(
        cli,
        ["scan", f"hf://acme/evil@{commit}", "--database-url", api.service.store.display_url],
    )
    assert rescanned.exit_code == 1, rescanned.output
    for model_id in (f"acme/evil@{commit}", f"hf://acme/evil@{commit}"):
        answer = api.call("GET", f"/api/v1/models/{model_id}", role=Role.VIEWER)
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert record["subject"] == f"hf://acme/evil@{commit}"
        assert [s["status"] for s in record["scans"]] == ["complete", "complete"]
        assert first["scan_id"] in {s["scan_id"] for s in record["scans"]}
        assert record["scan"]["scan_id"] == record["scans"][0]["scan_id"]
        assert record["scan"]["decision"] == "deny"
        assert {f["path"] for f in record["scan"]["files"]} >= {"model.pkl", "config.json"}
        assert all(d["decision"] == "deny" for d in record["decisions"])
        assert isinstance(record["changes"], list)
    for model_id, status in (
        (f"acme/none@{commit}", 404),
        ("acme/evil@main", 422),
        ("acme/evil", 422),
        ("../../etc/passwd", 404),  # the client resolves the dots: no such route
        (f"acme/evil@{'g' * 40}", 422),
    ):
        refused = api.call("GET", f"/api/v1/models/{model_id}", role=Role.VIEWER)
        assert refused.status_code == status, (model_id, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
