"""Scan jobs of the embedded server: a thread pool in the server process running `run_scan`."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from verifier.errors import VerifierError
from verifier.pipeline import HubOptions, run_scan
from verifier.printable import printable
from verifier.service.decisions import PolicySet
from verifier.service.model import JobStatus, ScanJob
from verifier.store.database import Store
from verifier.store.service_records import ServiceRecords

log = logging.getLogger(__name__)


class EmbeddedJobRunner:
    """Runs scan jobs on a few threads of the server, through the one scan path the CLI uses.

    Jobs are rows first: a job the server had queued or was running when it stopped is run
    again when the next server starts (`resume`), so a restart loses none.
    """

    def __init__(
        self, store: Store, policies: PolicySet, *, hub: HubOptions, workers: int = 2
    ) -> None:
        """Prepare `workers` threads (started by `resume`)."""
        self._store = store
        self._records = ServiceRecords(store)
        self._policies = policies
        self._hub = hub
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self._lock = threading.Lock()

    def resume(self) -> int:
        """Start the threads and queue again every job left unfinished; returns how many.

        Raises:
            StoreError: The database cannot be read.
        """
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="verifier-job")
        unfinished = self._records.unfinished_jobs()
        for job in unfinished:
            self.submit(job)
        return len(unfinished)

    def submit(self, job: ScanJob) -> None:
        """Run `job` on the next free thread."""
        if self._pool is None:
            raise RuntimeError("the job runner has not been started")
        future = self._pool.submit(self._run, job)
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
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run(self, job: ScanJob) -> None:
        """One job: running, then complete with its scan or failed with the one-line error."""
        try:
            self._records.set_job_status(job.job_id, JobStatus.RUNNING)
            policy = self._policies.for_environment(job.environment)
            report = run_scan(job.target, policy=policy, recorder=self._store, hub=self._hub)
        except VerifierError as exc:
            self._fail(job, exc.diagnostics())
            return
        except Exception as exc:  # the job boundary: a bug fails the job, it never passes it
            log.exception("scan job %s broke", job.job_id)
            self._fail(job, f"internal error, the scan did not complete ({type(exc).__name__})")
            return
        self._records.set_job_status(job.job_id, JobStatus.COMPLETE, scan_id=report.scan_id)

    def _fail(self, job: ScanJob, message: str) -> None:
        try:
            self._records.set_job_status(job.job_id, JobStatus.FAILED, error=printable(message))
        except VerifierError:
            log.exception("could not record that scan job %s failed", job.job_id)
