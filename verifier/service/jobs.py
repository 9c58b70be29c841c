"""Scan jobs: the one job function every runner calls, and the embedded runner (server threads).

A job is a `scan_jobs` row first. Whatever runs it (a thread of `verifier serve` on SQLite, a
`verifier worker` process on PostgreSQL) calls `run_scan_job`, which claims the row, runs the
one scan path the command line runs (`verifier.pipeline.run_scan`), and records the scan and the
job's completion in one transaction.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from verifier import config
from verifier.errors import SourceError, StoreError, UsageError, VerifierError
from verifier.model import DeclaredFile, FileResult, ScanReport
from verifier.pipeline import HubOptions, run_scan, scan_source
from verifier.printable import printable
from verifier.service.decisions import PolicySet
from verifier.service.model import JobStatus, Rescanner
from verifier.sources.huggingface.kept import KeptHubSource
from verifier.store.database import Store
from verifier.store.service_records import ServiceRecords

if TYPE_CHECKING:
    from verifier.bans import BanHit
    from verifier.lineage.attribution import RecordedReferences
    from verifier.lineage.fingerprint import LineageKey
    from verifier.model import ScanFacts
    from verifier.policy.compiled import PublisherRegistry

log = logging.getLogger(__name__)

#: Runs of one job at most when an attempt fails for a reason a retry can mend (the database).
MAX_ATTEMPTS = 3
#: Seconds the embedded runner waits before the second attempt (twice that before the third).
EMBEDDED_RETRY_SECONDS = 5.0
#: Tests only: a folder. A job that has scanned writes `paused-<pid>` there and waits, before
#: recording, until `release` appears there (or an hour passes), so that a test can kill the
#: process at that moment. Unset in every real deployment.
PAUSE_ENV = "VERIFIER_TEST_PAUSE_BEFORE_RECORD"
_PAUSE_LIMIT_SECONDS = 3600.0


class JobOutcome(enum.StrEnum):
    """What a runner does after one attempt of a job."""

    DONE = "done"  # complete, failed, or finished before by another attempt
    RETRY = "retry"  # run it again later: the attempt failed for a reason a retry can mend


@dataclass(frozen=True)
class JobContext:
    """What a job needs: the database, the policy set and the Hub to fetch from."""

    store: Store
    policies: PolicySet
    hub: HubOptions

    @property
    def records(self) -> ServiceRecords:
        """The service's records in the same database."""
        return ServiceRecords(self.store)


class JobRecorder:
    """Records a job's scan and the job's completion together, and looks up in the service's
    database what every scan looks up first (a `verifier.store.interface.ScanRecorder`)."""

    def __init__(self, context: JobContext, job_id: str) -> None:
        """Record for `job_id` in `context`'s database."""
        self._context, self._job_id = context, job_id
        self._blobs = context.records.blob_locks()

    def release(self) -> None:
        """Let go of the blobs this job held (after its scan is recorded, or it failed)."""
        self._blobs.release()

    def record_scan(self, report: ScanReport, *, bans_seen: int | None = None) -> None:
        """Record the scan and the job complete in one transaction (with `bans_seen`, only
        if no ban was made or lifted since: see `Store.record_scan`).

        Raises:
            BansChangedError: A ban was made or lifted since `bans_seen`; nothing is recorded.
            StoreError: The job was finished by another attempt, or the database failed.
        """
        _pause_for_tests()
        self._context.records.complete_job(self._job_id, report, bans_seen=bans_seen)

    def record_failed_scan(
        self,
        *,
        scan_id: str,
        target: str,
        started_at: str,
        finished_at: str,
        tool_version: str,
        error: str,
    ) -> None:
        """Record an attempt that broke as a failed scan, as `verifier scan` does.

        Raises:
            StoreError: The database failed.
        """
        self._context.store.record_failed_scan(
            scan_id=scan_id,
            target=target,
            started_at=started_at,
            finished_at=finished_at,
            tool_version=tool_version,
            error=error,
        )

    def verified_file(self, declared: DeclaredFile) -> FileResult | None:
        """A file verified and scanned before with the same digest (see `Store`).

        Each blob once: the blob is held by this job from this lookup until the job ends, so
        a job that asks for it meanwhile waits, then finds it recorded by this one instead of
        fetching it too (the fetch looks blobs up in digest order: no two jobs wait on each
        other).

        Raises:
            StoreError: The database failed.
        """
        if declared.sha256 is not None:
            self._blobs.hold(declared.sha256)
        return self._context.store.verified_file(declared)

    def recorded_sha256(self, declared: DeclaredFile) -> str | None:
        """The SHA-256 some recorded scan measured of the declared file (see `Store`).

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.recorded_sha256(declared)

    # Verified lineage (`verifier.lineage.verify.References`): a job's scan is compared with
    # the fingerprints the database recorded, as `verifier scan` is. Without these a scan by
    # the service computed and recorded a fingerprint but compared it with nothing.

    def lineage_key(self) -> LineageKey:
        """The store's lineage key (see `Store.lineage_key`).

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.lineage_key()

    def lineage_references(self, hidden_size: int) -> RecordedReferences:
        """Recorded fingerprints to compare with (see `Store.lineage_references`).

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.lineage_references(hidden_size)

    def identical_files(self, sha256s: Sequence[str]) -> Sequence[tuple[str, str | None, str]]:
        """Recorded Hub models holding any of these files (see `Store.identical_files`).

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.identical_files(sha256s)

    def ban_generation(self) -> int:
        """How many bans and lifts were ever recorded (see `Store.ban_generation`).

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.ban_generation()

    def bans_reaching(
        self, facts: ScanFacts, *, publishers: PublisherRegistry
    ) -> tuple[BanHit, ...]:
        """The bans in force that reach the scanned model (see `Store.bans_reaching`).

        The decision a job records is the one the gate answers from (until a ban is made or
        lifted after it), so it is made with the bans in force, as `verifier scan` makes it:
        a model a ban already reaches is denied by its first scan and by every re-scan.

        Raises:
            StoreError: The database failed.
        """
        return self._context.store.bans_reaching(facts, publishers=publishers)


def _pause_for_tests() -> None:
    folder = os.environ.get(PAUSE_ENV)
    if not folder:
        return
    path = Path(folder)
    (path / f"paused-{os.getpid()}").touch()
    deadline = time.monotonic() + _PAUSE_LIMIT_SECONDS
    while not (path / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run_scan_job(
    context: JobContext, job_id: str, *, attempt: int = 1, attempts: int = MAX_ATTEMPTS
) -> JobOutcome:
    """One attempt at a job: claim it, scan, and record the scan with the job complete.

    A job found finished (an earlier attempt recorded it before its worker died) is done. A
    job asked under another policy digest than this runner's fails: its decision would not be
    the one asked for. An attempt that fails on the database is retried while attempts remain
    (the Hub client retries its own transient failures); any other error fails the job with
    the one line the command line prints, and a bug fails it too, never passes it.

    Args:
        context: The database, policies and Hub.
        job_id: The `scan_jobs` row to run.
        attempt: Which attempt this is, from 1.
        attempts: How many attempts the runner makes at most.

    Returns:
        Whether the runner should run the job again.
    """
    records = context.records
    try:
        job = records.claim_job(job_id)
    except StoreError as exc:
        log.warning("scan job %s: %s", job_id, exc.diagnostics())
        return JobOutcome.RETRY if attempt < attempts else JobOutcome.DONE
    except VerifierError as exc:
        log.warning("scan job %s: %s", job_id, exc.diagnostics())
        return JobOutcome.DONE
    if job is None:
        return JobOutcome.DONE
    recorder = JobRecorder(context, job_id)
    try:
        policies = context.policies.current(context.store)
        if not _decides(policies, job.policy_digest):
            # The server may have read its policy files again since this worker started.
            context.policies.reload(context.store)
            policies = context.policies.current(context.store)
        if not _decides(policies, job.policy_digest):
            raise UsageError(
                f"this job asks for policy {job.policy_name} at {job.policy_digest}, and the "
                f"worker that took it decides with {policies.name} at {policies.digest}: "
                "run workers with the server's policy file"
            )
        # A job queued before a waiver was recorded is decided with it (and under the digest
        # that includes it): the waiver is the newer word of the same policy.
        policy = policies.for_environment(job.environment)
        rescanner = Rescanner.parse(job.requested_by)
        if rescanner is not None and not rescanner.from_hub:
            scan_source(kept_source(context, job.target), policy=policy, recorder=recorder)
        else:
            run_scan(job.target, policy=policy, recorder=recorder, hub=context.hub)
    except StoreError as exc:
        if attempt < attempts:
            _requeue(context, job_id, f"attempt {attempt} of {attempts}: {exc.diagnostics()}")
            return JobOutcome.RETRY
        _fail(context, job_id, exc.diagnostics())
    except VerifierError as exc:
        _fail(context, job_id, exc.diagnostics())
    except Exception as exc:  # the job boundary: a bug fails the job, it never passes it
        log.exception("scan job %s broke", job_id)
        _fail(context, job_id, f"internal error, the scan did not complete ({type(exc).__name__})")
    finally:
        recorder.release()
    return JobOutcome.DONE


def kept_source(context: JobContext, target: str) -> KeptHubSource:
    """The source of a re-scan from kept bytes: `target` as its newest scan recorded it.

    Raises:
        SourceError: No scan of `target` is recorded, or not one of a Hub commit.
        StoreError: The database cannot be reached or read.
    """
    newest = context.records.newest_scan_of(target)
    if newest is None:
        raise SourceError(f"{target}: no scan of it is recorded to scan again from kept bytes")
    return KeptHubSource(
        target,
        context.store.get_scan(newest.scan_id),
        home=config.home_dir(),
        blob_store=context.hub.blob_store,
    )


def _decides(policies: PolicySet, digest: str) -> bool:
    """Whether a runner with `policies` decides a job asked under `digest` (the same policy,
    or an earlier state of it: fewer recorded waivers, or the files before a reload)."""
    return digest == policies.digest or policies.is_earlier_digest(digest)


def _requeue(context: JobContext, job_id: str, message: str) -> None:
    try:
        context.records.set_job_status(job_id, JobStatus.QUEUED, error=printable(message))
    except VerifierError:
        log.exception("could not record that scan job %s will be retried", job_id)


def _fail(context: JobContext, job_id: str, message: str) -> None:
    try:
        context.records.set_job_status(job_id, JobStatus.FAILED, error=printable(message))
    except VerifierError:
        log.exception("could not record that scan job %s failed", job_id)


class JobQueue(Protocol):
    """Where the server hands its jobs: threads of its own, or procrastinate for workers."""

    def start(self) -> int:
        """Start; returns how many unfinished jobs were queued again."""
        ...

    def enqueue(self, connection: Any, job_id: str) -> None:
        """Queue a job inside the transaction that records it, on its DB-API connection."""
        ...

    def committed(self, job_id: str) -> None:
        """The job's transaction committed."""
        ...

    def drain(self) -> None:
        """Run or wait for every job queued so far, until each is finished (tests)."""
        ...

    def stop(self) -> None:
        """Stop; queued jobs stay queued in the database."""
        ...


class EmbeddedJobRunner:
    """Runs scan jobs on a few threads of the server (`JobQueue` of the embedded default).

    Jobs are rows first: a job the server had queued or was running when it stopped is run
    again when the next server starts (`start`), so a restart loses none.
    """

    def __init__(self, context: JobContext, *, workers: int = 2) -> None:
        """Prepare `workers` threads (started by `start`)."""
        self._context = context
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> int:
        """Start the threads and queue again every job left unfinished; returns how many.

        Raises:
            StoreError: The database cannot be read.
        """
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="verifier-job")
        unfinished = self._context.records.unfinished_jobs()
        for job in unfinished:
            self.committed(job.job_id)
        return len(unfinished)

    def enqueue(self, connection: Any, job_id: str) -> None:
        """Nothing to do in the transaction: the job's row is the queue."""

    def committed(self, job_id: str) -> None:
        """Run the job on the next free thread."""
        if self._pool is None:
            raise RuntimeError("the job runner has not been started")
        future = self._pool.submit(self._run, job_id)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._futures.discard(future)

    def drain(self) -> None:
        """Wait until every job submitted so far has finished."""
        with self._lock:
            pending = set(self._futures)
        wait(pending)

    def stop(self) -> None:
        """Let running jobs finish and drop the queued ones (they stay queued in the database)."""
        self._stopping.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run(self, job_id: str) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if run_scan_job(self._context, job_id, attempt=attempt) is JobOutcome.DONE:
                return
            if self._stopping.wait(EMBEDDED_RETRY_SECONDS * attempt):
                return  # stopping: the job stays queued for the next start
