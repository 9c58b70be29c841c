"""The one job function: claimed once, recorded with its scan, retried on database failures."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from tests.hub_emulator import HubEmulator
from tests.service.conftest import start
from tests.sources.test_huggingface import model_files
from verifier.pipeline import HubOptions
from verifier.service.jobs import MAX_ATTEMPTS, JobContext, JobOutcome, run_scan_job
from verifier.service.model import JobStatus, ScanJob


def _job(context: JobContext, target: str, **changes: object) -> ScanJob:
    job = ScanJob(
        job_id="c" * 32,
        target=target,
        policy_name=context.policies.name,
        policy_digest=context.policies.digest,
        environment=None,
        status=JobStatus.QUEUED,
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )
    job = replace(job, **changes)  # type: ignore[arg-type]
    context.records.add_job(job)
    return job


def _context(url: str) -> JobContext:
    service, _ = start(url)
    return JobContext(store=service.store, policies=service.policies, hub=HubOptions())


def _scans(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, status FROM scans ORDER BY started_at"))
            return [(str(a), str(b)) for a, b in rows]
    finally:
        engine.dispose()


def _refuse_scans(url: str, *, refuse: bool) -> None:
    """A database that refuses every new scan row (a real failure of the write, no mock)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            if refuse:
                connection.execute(
                    sa.text(
                        "CREATE TRIGGER refuse BEFORE INSERT ON scans "
                        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
                    )
                )
            else:
                connection.execute(sa.text("DROP TRIGGER refuse"))
    finally:
        engine.dispose()


def test_a_job_runs_once_and_a_second_run_does_nothing(sqlite_url: str, hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    context = _context(sqlite_url)
    job = _job(context, "hf://acme/tiny")
    assert run_scan_job(context, job.job_id) is JobOutcome.DONE
    done = context.records.get_job(job.job_id)
    assert done.status is JobStatus.COMPLETE and done.scan_id is not None
    assert _scans(sqlite_url) == [(done.scan_id, "complete")]
    downloads = len(hub.downloads())
    # Taken again (its worker was thought dead): finished already, nothing is fetched or recorded.
    assert run_scan_job(context, job.job_id, attempt=2) is JobOutcome.DONE
    assert context.records.get_job(job.job_id) == done
    assert len(hub.downloads()) == downloads and len(_scans(sqlite_url)) == 1


def test_database_failures_are_retried_then_fail(sqlite_url: str, hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    context = _context(sqlite_url)
    job = _job(context, "hf://acme/tiny")
    _refuse_scans(sqlite_url, refuse=True)
    assert run_scan_job(context, job.job_id, attempt=1) is JobOutcome.RETRY
    waiting = context.records.get_job(job.job_id)
    assert waiting.status is JobStatus.QUEUED
    assert waiting.error is not None and waiting.error.startswith(f"attempt 1 of {MAX_ATTEMPTS}:")
    assert "disk full" in waiting.error
    assert run_scan_job(context, job.job_id, attempt=MAX_ATTEMPTS) is JobOutcome.DONE
    failed = context.records.get_job(job.job_id)
    assert failed.status is JobStatus.FAILED and "disk full" in (failed.error or "")
    assert _scans(sqlite_url) == []

    # A failed job stays failed: a late run changes nothing.
    _refuse_scans(sqlite_url, refuse=False)
    assert run_scan_job(context, job.job_id) is JobOutcome.DONE
    assert context.records.get_job(job.job_id).status is JobStatus.FAILED


def test_a_job_asked_under_another_policy_fails(sqlite_url: str) -> None:
    context = _context(sqlite_url)
    job = _job(context, "hf://acme/tiny", policy_digest="sha256:" + "0" * 64)
    assert run_scan_job(context, job.job_id) is JobOutcome.DONE
    failed = context.records.get_job(job.job_id)
    assert failed.status is JobStatus.FAILED
    assert "run workers with the server's policy file" in (failed.error or "")
