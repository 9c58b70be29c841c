"""Scan jobs on procrastinate over the service's PostgreSQL: queued by the server, run by workers.

The server defers a procrastinate job in the transaction that records the `scan_jobs` row
(`ProcrastinateQueue.enqueue`); any number of `verifier worker` processes, on any hosts that
reach the database, take them (`run_worker`) and call the same `run_scan_job` as the embedded
runner. A job is retried when an attempt fails on the database, and taken again when its
worker stops sending heartbeats (killed, or its host lost): each worker looks for such stalled
jobs while it runs.

procrastinate is imported here only, and this module only by the commands that need it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from verifier.errors import MissingExtraError, StoreError, UsageError
from verifier.service.jobs import MAX_ATTEMPTS, JobContext, JobOutcome, run_scan_job
from verifier.store.service_records import wait_exclusive

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)

#: procrastinate's name for the one task: run a `scan_jobs` row by its id.
TASK_NAME = "verifier.scan"
#: The queue the service's jobs go to (other procrastinate users of the database keep theirs).
QUEUE = "verifier"
#: Seconds before a job whose attempt failed on the database is tried again.
RETRY_SECONDS = 30
#: Defaults of `verifier worker`: seconds between heartbeats, and without one before the
#: worker is taken for dead and its jobs are run again by another.
HEARTBEAT_SECONDS = 10.0
STALLED_AFTER_SECONDS = 60.0
#: The database lock a starting server holds while it queues the unfinished jobs again, and
#: how long it waits for another server's turn to end before leaving the jobs to that one.
REQUEUE_LOCK = "verifier.requeue"
REQUEUE_WAIT_SECONDS = 60.0


class _RetryLater(Exception):
    """An attempt failed for a reason a retry can mend (see `run_scan_job`)."""


def _procrastinate() -> Any:
    try:
        import procrastinate
    except ImportError as exc:
        raise MissingExtraError("scan jobs on PostgreSQL", extra="postgres") from exc
    return procrastinate


def libpq_url(database_url: str) -> str:
    """The libpq connection URI of a SQLAlchemy PostgreSQL URL (procrastinate speaks libpq).

    Raises:
        UsageError: The URL is not a PostgreSQL URL.
    """
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise UsageError(f"not a database URL: {exc}") from exc
    if url.get_backend_name() != "postgresql":
        raise UsageError(
            "workers need the service's PostgreSQL database (postgresql+psycopg://...); "
            "with SQLite, `verifier serve` runs the scans itself"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _app(database_url: str, *, sync: bool) -> procrastinate.App:
    module = _procrastinate()
    conninfo = libpq_url(database_url)
    connector = (
        module.SyncPsycopgConnector(conninfo=conninfo, min_size=1, max_size=2)
        if sync
        else module.PsycopgConnector(conninfo=conninfo)
    )
    app: procrastinate.App = module.App(connector=connector)
    return app


def _defer(app: procrastinate.App, job_id: str, *, connection: Any = None) -> None:
    # The job's id as procrastinate's lock: two runs of one job never overlap.
    deferrer = app.configure_task(
        TASK_NAME, queue=QUEUE, lock=job_id, task_kwargs={"job_id": job_id}, connection=connection
    )
    deferrer.defer()


class ProcrastinateQueue:
    """The server's `JobQueue` on PostgreSQL: jobs go to procrastinate, workers run them."""

    def __init__(self, database_url: str, context: JobContext) -> None:
        """Prepare the queue (nothing connects until `start`).

        Raises:
            MissingExtraError: procrastinate is not installed.
            UsageError: The database is not PostgreSQL.
        """
        self._database_url = database_url
        self._context = context
        self._app = _app(database_url, sync=True)

    def start(self) -> int:
        """Queue again every unfinished job that procrastinate no longer holds; how many.

        Such jobs were recorded before the database had workers (or their queue entry was
        removed by hand): without this they would stay queued for ever. One server at a time
        does it (a lock in the database), so servers starting at once queue each job once.

        Raises:
            StoreError: The database cannot be reached.
        """
        module = _procrastinate()
        queued = 0
        store = self._context.store
        # Servers starting at once would each find a job not held yet and each queue it:
        # one at a time looks and queues, and the next finds the entries the one before made.
        with wait_exclusive(store, REQUEUE_LOCK, wait_seconds=REQUEUE_WAIT_SECONDS) as taken:
            if not taken:
                log.warning(
                    "another server has been queueing the unfinished scan jobs again for "
                    "%g seconds; this one leaves them to it",
                    REQUEUE_WAIT_SECONDS,
                )
                return 0
            try:
                self._app.open()
                for job in self._context.records.unfinished_jobs():
                    held = self._app.job_manager.list_jobs(lock=job.job_id, queue=QUEUE)
                    if any(entry.status in ("todo", "doing") for entry in held):
                        continue
                    _defer(self._app, job.job_id)
                    queued += 1
            except module.exceptions.ConnectorException as exc:
                raise StoreError(f"cannot queue the unfinished scan jobs: {exc}") from exc
            finally:
                # Requests queue on their own transaction's connection: no pool is kept open.
                self._app.close()
        return queued

    def enqueue(self, connection: Any, job_id: str) -> None:
        """Defer the job on the recording transaction's connection (committed with it).

        Raises:
            StoreError: The database refused it.
        """
        module = _procrastinate()
        try:
            _defer(self._app, job_id, connection=connection)
        except module.exceptions.ConnectorException as exc:
            raise StoreError(f"cannot queue scan job {job_id}: {exc}") from exc

    def committed(self, job_id: str) -> None:
        """Nothing to do: a worker is notified when the transaction commits."""

    def drain(self) -> None:
        """Run every queued job in this process until none is left (tests and one-off runs).

        Raises:
            StoreError: The database cannot be reached.
        """
        run_worker(self._database_url, self._context, concurrency=1, until_empty=True)

    def stop(self) -> None:
        """Close the connections; queued jobs stay in the database for the workers."""
        self._app.close()


def _register(app: procrastinate.App, context: JobContext) -> None:
    module = _procrastinate()
    retry = module.RetryStrategy(
        max_attempts=MAX_ATTEMPTS - 1,  # retries after the first attempt
        wait=RETRY_SECONDS,
        retry_exceptions={_RetryLater},
    )

    @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=retry)
    def scan(job_context: Any, job_id: str) -> None:
        attempt = int(job_context.job.attempts) + 1
        if run_scan_job(context, job_id, attempt=attempt) is JobOutcome.RETRY:
            raise _RetryLater(f"scan job {job_id}: attempt {attempt} failed; retrying")


async def _retry_stalled(app: procrastinate.App, *, every: float, stalled_after: float) -> None:
    """Run again the jobs of workers that sent no heartbeat for `stalled_after` seconds."""
    module = _procrastinate()
    while True:
        await asyncio.sleep(every)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                queue=QUEUE, task_name=TASK_NAME, seconds_since_heartbeat=stalled_after
            )
            for job in stalled:
                try:
                    await app.job_manager.retry_job(job)
                    log.warning("scan job %s: its worker is gone; queued again", job.lock)
                except module.exceptions.ConnectorException:
                    log.info("stalled job %s was taken again by another worker", job.id)
        except module.exceptions.ConnectorException:
            log.exception("could not look for stalled scan jobs")


def run_worker(
    database_url: str,
    context: JobContext,
    *,
    concurrency: int = 2,
    until_empty: bool = False,
    heartbeat: float = HEARTBEAT_SECONDS,
    stalled_after: float = STALLED_AFTER_SECONDS,
    name: str | None = None,
) -> None:
    """Take and run scan jobs until stopped (SIGINT, SIGTERM), or until none is left.

    Args:
        database_url: The service's PostgreSQL URL.
        context: The database, the policies and the Hub the jobs use.
        concurrency: Jobs run at once.
        until_empty: Return once no job is queued, instead of waiting for more.
        heartbeat: Seconds between this worker's heartbeats.
        stalled_after: Seconds without a heartbeat after which another worker's running jobs
            are taken again.
        name: The worker's name in procrastinate's records and the logs.

    Raises:
        MissingExtraError: procrastinate is not installed.
        UsageError: The database is not PostgreSQL, or a duration is not positive.
        StoreError: The database cannot be reached.
    """
    if heartbeat <= 0 or stalled_after <= heartbeat:
        raise UsageError("the heartbeat must be positive and shorter than the stalled delay")
    module = _procrastinate()
    app = _app(database_url, sync=False)
    _register(app, context)

    async def work() -> None:
        async with app.open_async():
            rescuer = None
            if not until_empty:
                rescuer = asyncio.create_task(
                    _retry_stalled(app, every=heartbeat, stalled_after=stalled_after)
                )
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    wait=not until_empty,
                    name=name or "worker",
                    update_heartbeat_interval=heartbeat,
                    stalled_worker_timeout=stalled_after,
                    install_signal_handlers=not until_empty,
                    listen_notify=not until_empty,
                )
            finally:
                if rescuer is not None:
                    rescuer.cancel()

    try:
        asyncio.run(work())
    except (module.exceptions.ConnectorException, OSError) as exc:
        raise StoreError(f"the worker lost its database: {exc}") from exc
