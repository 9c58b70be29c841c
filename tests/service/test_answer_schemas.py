"""Every success answer of every route, on a server that holds scans, bans, watches, waivers,
approvals and notifications, matches the exact schema `/openapi.json` gives it; and every
documented success status of every operation is reached (schemathesis, beside, sends random
requests that mostly meet an empty or missing record)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import referencing
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from referencing.jsonschema import DRAFT202012

from tests.evidence.keys import write_pair
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Api, start
from tests.service.test_api import review
from tests.service.test_watches_api import SECRET as HOOK_SECRET
from tests.service.test_watches_api import payload
from tests.sources.test_huggingface import model_files
from verifier import config
from verifier.service.answers import FACTS_PREFIX, SCAN_DOCUMENT, scan_document_components
from verifier.service.app import create_app
from verifier.service.upkeep import run_pass
from verifier.sources.quarantine import verified_blob

NOTIFY_SECRET = "a-notification-secret-for-tests"
NEXT_YEAR = "2099-12-31"


class Checked:
    """Validates answers against the served OpenAPI document and keeps what it saw."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = DRAFT202012.create_resource(document)
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            "urn:openapi", resource
        )
        # `{model_id}` is a path parameter (`namespace/name@commit`); the others are one segment.
        self.templates = [
            (
                re.compile(
                    "^" + re.sub(r"\{[^}]+\}", "[^/]+", path.replace("{model_id}", ".+")) + "$"
                ),
                path,
            )
            for path in document["paths"]
        ]
        self.seen: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str:
        bare = path.split("?", 1)[0]
        found = [template for pattern, template in self.templates if pattern.match(bare)]
        assert len(found) == 1, (path, found)
        return found[0]

    def __call__(self, response: httpx.Response, method: str, path: str) -> Any:
        template = self.template(path)
        operation = self.document["paths"][template][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], (method, path, status, response.text)
        content = operation["responses"][status]["content"]
        media = response.headers["content-type"].split(";")[0]
        assert media in content, (method, path, media)
        schema = {"$ref": f"urn:openapi#{_pointer(template, method, status, media)}"}
        validator = jsonschema.Draft202012Validator(schema, registry=self.registry)
        body = response.json()
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, [(method, path, list(e.path), e.message[:300]) for e in errors[:5]]
        self.seen.add((method.upper(), template, response.status_code))
        return body


def _pointer(path: str, method: str, status: str, media: str) -> str:
    def escape(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    parts = ["paths", path, method.lower(), "responses", status, "content", media, "schema"]
    return "/" + "/".join(escape(p) for p in parts)


@pytest.fixture
def full(database_url: str, hub: HubEmulator, tmp_path: Path) -> Iterator[Api]:
    """A server with every optional part configured: approval key, webhook secret, a
    notification URL on a closed loopback port (its deliveries fail and are logged)."""
    private, _ = write_pair(tmp_path / "keys", "org", ec.generate_private_key(ec.SECP256R1()))
    service, tokens = start(
        database_url,
        approval_key_path=private,
        hub_webhook_secret=HOOK_SECRET,
        notify_urls=("http://127.0.0.1:9/hook",),
        notify_secret=NOTIFY_SECRET,
    )
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


def test_every_success_answer_matches_its_documented_schema(
    full: Api, hub: HubEmulator, marker_dir: Path
) -> None:
    api = full
    check = Checked(api.call("GET", "/openapi.json").json())

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return check(api.call(method, path, **kwargs), method, path)

    check(api.client.get("/healthz"), "GET", "/healthz")
    clean = f"hf://acme/tiny@{hub.add_repo('acme/tiny', model_files()).refs['main']}"
    files = model_files()
    files["model.pkl"] = os_system(marker_dir)
    evil = f"hf://acme/evil@{hub.add_repo('acme/evil', files).refs['main']}"

    queued = call("POST", "/api/v1/scans", json={"target": clean})
    assert queued["status"] == "queued"
    api.service.runner.drain()
    done = call("GET", f"/api/v1/scans/{queued['id']}")
    assert done["status"] == "complete" and done["result"]["decision"] == "allow"
    assert call("POST", "/api/v1/scans", json={"target": clean})["status"] == "complete"
    failed = call("POST", "/api/v1/scans", json={"target": "hf://acme/none@main"})
    evil_job = call("POST", "/api/v1/scans", json={"target": evil})
    api.service.runner.drain()
    assert call("GET", f"/api/v1/scans/{failed['id']}")["status"] == "failed"
    assert call("GET", f"/api/v1/scans/{evil_job['id']}")["result"]["decision"] == "deny"

    denied = call("GET", f"/api/v1/decision?target={evil}")
    rule = next(r["rule_id"] for r in denied["reasons"] if r["effect"] == "deny")
    call("GET", f"/api/v1/decision?target=hf://acme/tiny@{'2' * 40}")  # unknown
    for document in (review(clean), review(evil), review(), review(clean, operation="DELETE")):
        call("POST", "/api/v1/admission", json=document)

    waiver = {
        "id": "evil-reviewed",
        "rule": rule,
        "subject": evil,
        "expires": NEXT_YEAR,
        "ticket": "SEC-1",
        "justification": "reviewed by hand",
    }
    assert call("POST", "/api/v1/waivers", json=waiver)["affected"]
    call("GET", "/api/v1/waivers")
    assert call("POST", "/api/v1/policies/reload")["changed"] is False
    # Every scan here is by this version and none was re-scanned: nothing to list.
    assert call("GET", "/api/v1/rescans?state=held")["rescans"] == []
    subscriptions = "/api/v1/notifications/subscriptions"
    made = call("POST", subscriptions, json={"url": "https://hooks.example/subscribed"})
    assert made["secret"] and made["subscription"]["configured_by"] == "api"
    assert len(call("GET", subscriptions)["subscriptions"]) >= 1
    removed = call("DELETE", f"{subscriptions}/{made['subscription']['id']}")
    assert removed["subscription"]["id"] == made["subscription"]["id"]
    approval = call("POST", "/api/v1/approvals", json={"target": clean})
    assert approval["files"] > 0
    ended = call("POST", "/api/v1/waivers/evil-reviewed/revoke", json={"reason": "not fixed"})
    assert ended["affected"]
    assert call("POST", "/api/v1/tokens", json={"name": "ci", "role": "viewer"})["secret"]
    assert call("GET", "/api/v1/tokens")["tokens"]
    assert call("POST", "/api/v1/tokens/ci/revoke")["revoked_at"] is not None

    ban = {"kind": "model", "value": clean.removeprefix("hf://"), "reason": "a front"}
    added = call("POST", "/api/v1/bans", json=ban)
    assert added["affected"]
    call("GET", "/api/v1/blast-radius?publisher=acme")
    run_pass(api.service, poll=False)  # the notification owed; its delivery fails
    lifted = call("POST", f"/api/v1/bans/{added['ban']['id']}/lift", json={"reason": "wrong"})
    assert lifted["ban"]["active"] is False
    assert call("GET", "/api/v1/bans?all=true")["bans"]
    assert call("GET", "/api/v1/decision-changes")["changes"]
    assert call("GET", "/api/v1/notifications")["notifications"]

    assert call("POST", "/api/v1/watches", json={"target": "hf://acme/tiny@main"})["job"]
    assert call("POST", "/api/v1/watches", json={"target": "hf://acme/tiny@main"})["job"] is None
    assert call("GET", "/api/v1/watches")["watches"]
    sha = clean.rsplit("@", 1)[1]
    hooked = api.client.post(
        "/api/v1/hooks/huggingface",
        json=payload("acme/tiny", ("refs/heads/main", "1" * 40), ("refs/tags/v1", sha)),
        headers={"X-Webhook-Secret": HOOK_SECRET},
    )
    assert check(hooked, "POST", "/api/v1/hooks/huggingface")["queued"]
    api.service.runner.drain()

    models = call("GET", "/api/v1/models")["models"]
    assert {m["subject"] for m in models} >= {clean, evil}
    for subject in (clean, evil):
        record = call("GET", f"/api/v1/models/{subject.removeprefix('hf://')}")
        assert record["scan"]["target"].startswith("hf://")
    garbage = verified_blob(config.home_dir(), "ab" * 32)
    garbage.parent.mkdir(parents=True, exist_ok=True)
    garbage.write_bytes(b"left by a killed job")
    os.utime(garbage, (0, 0))
    dry = call("POST", "/api/v1/blobs/gc", json={})
    assert [b["sha256"] for b in dry["stores"][0]["blobs"]] == ["ab" * 32]
    done = call("POST", "/api/v1/blobs/gc", json={"older_than": "1d", "delete": True})
    assert done["stores"][0]["blobs"][0]["deleted"] and not garbage.exists()
    assert call("GET", "/api/v1/audit")["events"][0]["action"] == "blobs.collected"

    documented = {
        (method.upper(), path, int(status))
        for path, operations in check.document["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if status.startswith("2")
    }
    assert documented - check.seen == set()


def test_the_scan_document_is_the_shipped_schema() -> None:
    """The components hold the shipped scan and facts schemas, with nothing left to fetch."""
    components = scan_document_components()
    assert components[SCAN_DOCUMENT]["required"][:2] == ["schema_version", "scan_id"]
    assert {name for name in components if name.startswith(FACTS_PREFIX)} >= {
        "facts.file",
        "facts.finding",
        "facts.signature",
    }
    refs = re.findall(r"'\$ref': '([^']+)'", repr(components))
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs), refs
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(components)


def test_every_example_matches_its_schema(tmp_path: Path) -> None:
    """The answers' examples in the document are answers the schema accepts."""
    service, _ = start(f"sqlite:///{tmp_path / 'v.db'}")
    document = create_app(service).openapi()
    service.close()
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        "urn:openapi", DRAFT202012.create_resource(document)
    )
    checked = []
    for name, schema in document["components"]["schemas"].items():
        for example in schema.get("examples", ()):
            ref = {"$ref": f"urn:openapi#/components/schemas/{name}"}
            validator = jsonschema.Draft202012Validator(ref, registry=registry)
            errors = [f"{list(e.path)}: {e.message[:200]}" for e in validator.iter_errors(example)]
            assert not errors, (name, errors)
            checked.append(name)
    assert {"ScanAccepted", "ScanJobAnswer", "Inventory", "BlobsCollected"} <= set(checked)
    assert len(checked) >= 14, checked
