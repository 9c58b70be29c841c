"""Identical scan requests at the same moment share one job (the database decides)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Running, start
from tests.sources.test_huggingface import model_files
from verifier.service.jobs import PAUSE_ENV
from verifier.service.model import JobStatus, Role, ScanJob
from verifier.store.database import Store
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.scan_tables import (
    UTCDateTime,
)

CLIENTS = 16


def _job(job_id: str, target: str = "hf://acme/tiny@main", **changes: object) -> ScanJob:
    job = ScanJob(
        job_id=job_id,
        target=target,
        policy_name="default",
        policy_digest="d" * 64,
        environment=None,
        status=JobStatus.QUEUED,
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    return replace(job, **changes)  # type: ignore[arg-type]


def test_identical_requests_at_once_queue_one_job(
    server: Running,
    hub: HubEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    target = f"hf://acme/tiny@{commit}"
    pause = tmp_path / "pause"
    pause.mkdir()
    monkeypatch.setenv(PAUSE_ENV, str(pause))  # the job waits, unfinished, before recording
    headers = {"Authorization": f"Bearer {server.tokens[Role.SCANNER]}"}
    barrier = threading.Barrier(CLIENTS)

    def ask(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            barrier.wait()
            return client.post("/api/v1/scans", json={"target": target})

    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(ask, range(CLIENTS)))
        assert [a.status_code for a in answers] == [202] * CLIENTS, answers[0].text
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 1
        unfinished = server.service.records.unfinished_jobs()
        assert [job.job_id for job in unfinished] == list(ids)
    finally:
        (pause / "release").touch()
    (job_id,) = ids
    viewer = {"Authorization": f"Bearer {server.tokens[Role.VIEWER]}"}
    with httpx.Client(base_url=server.url, headers=viewer, timeout=120) as client:
        for _ in range(6_000):
            document = client.get(f"/api/v1/scans/{job_id}").json()
            if document["status"] in ("complete", "failed"):
                break
            threading.Event().wait(0.05)
        assert document["status"] == "complete", document["error"]
        again = client.post(
            "/api/v1/scans",
            json={"target": target},
            headers={"Authorization": f"Bearer {server.tokens[Role.SCANNER]}"},
        )
    assert again.status_code == 200 and again.json()["scan_id"] == document["scan_id"]


def test_the_database_keeps_one_open_job_per_request(database_url: str) -> None:
    service, _ = start(database_url)
    records = service.records
    try:
        first = _job("a" * 32)
        assert records.add_job(first) == first
        # Recorded without asking first (as when two servers ask at once): the database
        # refuses a second open job for the same request and answers with the first.
        assert records.add_job(_job("b" * 32)) == first
        assert [job.job_id for job in records.unfinished_jobs()] == [first.job_id]
        # Another environment or policy digest, or a finished job: another request.
        other_env = _job("c" * 32, environment="production")
        other_digest = _job("e" * 32, policy_digest="f" * 64)
        assert records.add_job(other_env) == other_env
        assert records.add_job(other_digest) == other_digest
        records.set_job_status(first.job_id, JobStatus.FAILED, error="gone")
        second = _job("b" * 32)
        assert records.add_job(second) == second
        done = _job("0" * 32, status=JobStatus.COMPLETE)
        assert records.add_job(done) == done  # a finished job holds no key
        assert {job.job_id for job in records.unfinished_jobs()} == {
            second.job_id,
            other_env.job_id,
            other_digest.job_id,
        }
    finally:
        service.close()


def test_the_migration_keeps_the_oldest_of_duplicate_open_jobs(database_url: str) -> None:
    from alembic import command

    store = Store(database_url)
    try:
        config = store._alembic_config()
        with store._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0014")
        jobs = sa.table(
            "scan_jobs",
            *(sa.column(name) for name in ("id", "target", "policy_name", "policy_digest")),
            *(sa.column(name) for name in ("environment", "status", "requested_by")),
            sa.column("created_at", UTCDateTime()),
            sa.column("updated_at", UTCDateTime()),
        )
        rows = [
            ("a" * 32, 3, "queued", None),  # a duplicate of the next, asked a minute later
            ("b" * 32, 2, "running", None),
            ("c" * 32, 4, "queued", "production"),  # another request
            ("e" * 32, 1, "complete", None),  # finished: not open
        ]
        with store._engine.begin() as connection:
            for job_id, minute, status, environment in rows:
                at = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
                connection.execute(
                    sa.insert(jobs).values(
                        id=job_id,
                        target="hf://acme/tiny@main",
                        policy_name="default",
                        policy_digest="d" * 64,
                        environment=environment,
                        status=status,
                        requested_by="test",
                        created_at=at,
                        updated_at=at,
                    )
                )
        assert store.upgrade() == SCHEMA_HEAD
    finally:
        store.close()
    service, _ = start(database_url)
    try:
        records = service.records
        assert {job.job_id for job in records.unfinished_jobs()} == {"b" * 32, "c" * 32}
        duplicate = records.get_job("a" * 32)
        assert duplicate.status is JobStatus.FAILED and "b" * 32 in (duplicate.error or "")
        assert records.get_job("e" * 32).status is JobStatus.COMPLETE
        assert records.add_job(_job("0" * 32)) == records.get_job("b" * 32)
    finally:
        service.close()
