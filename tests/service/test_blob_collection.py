"""`POST /api/v1/blobs/gc`: the server collects its host's folder with the job locks its own
scan jobs take (admin only; see tests/blobs/test_gc.py for the collection itself)."""

from __future__ import annotations

import hashlib
import os

from tests.service.conftest import Api
from verifier import config
from verifier.service.model import Role
from verifier.sources.quarantine import verified_blob


def _put(data: bytes) -> str:
    sha256 = hashlib.sha256(data).hexdigest()
    path = verified_blob(config.home_dir(), sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (1_000_000_000, 1_000_000_000))  # 2001: long past any grace period
    return sha256


def test_the_server_keeps_what_its_jobs_hold_and_deletes_the_rest(api: Api) -> None:
    api.service.store.record_failed_scan(
        scan_id="f" * 32,
        target="hf://acme/other",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        tool_version="0",
        error="a scan, so that the database is not empty",
    )
    held, free = _put(b"a running job looked this up"), _put(b"left by a killed job")
    job = api.service.records.blob_locks()
    job.hold(held)  # as a scan job of this server holds a blob until it has recorded
    try:
        dry = api.call("POST", "/api/v1/blobs/gc", json={})
        assert dry.status_code == 200, dry.text
        [local] = dry.json()["stores"]
        assert local["kept"]["in_use"] == 1 and [b["sha256"] for b in local["blobs"]] == [free]
        assert verified_blob(config.home_dir(), free).exists()
        done = api.call("POST", "/api/v1/blobs/gc", json={"delete": True, "older_than": "2d"})
        assert done.status_code == 200, done.text
    finally:
        job.release()
    assert done.json()["stores"][0]["blobs"] == [{**local["blobs"][0], "deleted": True}]
    assert not verified_blob(config.home_dir(), free).exists()
    assert verified_blob(config.home_dir(), held).exists()
    [event] = [
        e
        for e in api.call("GET", "/api/v1/audit").json()["events"]
        if e["action"] == "blobs.collected"
    ]
    assert event["actor"] == "token:admin-token" and event["detail"]["deleted"] == 1


def test_the_collection_is_checked(api: Api) -> None:
    for body in ({"older_than": "5m"}, {"older_than": "7 days"}, {"delete": "maybe"}, {"x": 1}):
        response = api.call("POST", "/api/v1/blobs/gc", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    refused = api.call("POST", "/api/v1/blobs/gc", json={}, role=Role.APPROVER)
    assert refused.status_code == 403
