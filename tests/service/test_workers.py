"""Workers on PostgreSQL: jobs queued with their record, run by `verifier worker` processes."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi.testclient import TestClient

from tests.hub_emulator import HubEmulator
from tests.service.conftest import Api, start
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.policy import default_policy_path
from verifier.service.app import create_app
from verifier.service.core import Service, ServiceConfig
from verifier.service.jobs import PAUSE_ENV
from verifier.service.model import JobStatus, Role, ScanJob
from verifier.service.workers import QUEUE, ProcrastinateQueue
from verifier.store import Store
from verifier.store.revision import SCHEMA_HEAD

ROOT = Path(__file__).resolve().parents[2]
#: Generous: a deadline only ends a test that would otherwise hang; nothing is timed.
DEADLINE_SECONDS = 300.0


def wait_for(what: str, condition: Callable[[], Any]) -> Any:
    """Poll `condition` until it returns something true; fail after the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


class Workers:
    """`verifier worker` processes on one database, stopped at the end of the test."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.database_url, self.logs = database_url, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.logs / f"worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "verifier",
                    "worker",
                    "--database-url",
                    self.database_url,
                    "--heartbeat",
                    "0.5",
                    "--stalled-after",
                    "3",
                    "--concurrency",
                    "1",
                    *extra,
                ],
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def log(self, index: int) -> str:
        return (self.logs / f"worker-{index}.log").read_text(errors="replace")

    def stop(self) -> list[int | None]:
        """SIGTERM every worker still running and wait: a worker stops gracefully."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=DEADLINE_SECONDS))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


@pytest.fixture
def workers(postgresql_database: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(postgresql_database, tmp_path)
    yield pool
    pool.stop()


@pytest.fixture
def pg_api(postgresql_database: str, hub: HubEmulator) -> Iterator[Api]:
    """The service on its own PostgreSQL database: it queues, and runs nothing itself."""
    service, tokens = start(postgresql_database)
    assert isinstance(service.runner, ProcrastinateQueue) and not service.embedded
    with TestClient(create_app(service)) as client:
        yield Api(client, service, tokens)


def queue_rows(database_url: str) -> list[dict[str, Any]]:
    """procrastinate's jobs of the service's queue."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT id, lock, status, attempts, args FROM procrastinate_jobs "
                    "WHERE queue_name = :queue ORDER BY id"
                ),
                {"queue": QUEUE},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        engine.dispose()


def scans_of(database_url: str, target_prefix: str) -> list[tuple[str, str]]:
    """(scan id, status) of every recorded scan of targets starting with the prefix."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT id, status FROM scans WHERE target LIKE :prefix ORDER BY id"),
                {"prefix": target_prefix + "%"},
            )
            return [(str(a), str(b)) for a, b in rows]
    finally:
        engine.dispose()


def job_document(api: Api, job_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/api/v1/scans/{job_id}", role=Role.VIEWER)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def finished(api: Api, job_id: str) -> dict[str, Any] | None:
    document = job_document(api, job_id)
    return document if document["status"] in ("complete", "failed") else None


def submit(api: Api, target: str) -> str:
    response = api.call("POST", "/api/v1/scans", role=Role.SCANNER, json={"target": target})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_workers_run_the_scans_the_server_queues(
    pg_api: Api, hub: HubEmulator, workers: Workers, postgresql_database: str
) -> None:
    repos = [f"acme/model-{index}" for index in range(3)]
    for repo in repos:
        hub.add_repo(repo, model_files())
    jobs = [submit(pg_api, f"hf://{repo}") for repo in repos]

    # Queued in procrastinate with the request, nothing run: the server runs no scan itself.
    queued = queue_rows(postgresql_database)
    assert [(row["lock"], row["status"], row["args"]) for row in queued] == [
        (job, "todo", {"job_id": job}) for job in jobs
    ]
    assert all(job_document(pg_api, job)["status"] == "queued" for job in jobs)

    workers.start("--name", "first")
    workers.start("--name", "second")
    documents = [wait_for(f"job {job}", lambda job=job: finished(pg_api, job)) for job in jobs]
    for repo, document in zip(repos, documents, strict=True):
        assert document["status"] == "complete", (document, workers.log(0), workers.log(1))
        assert document["result"]["decision"] == "allow"
        assert document["result"]["target"] == f"hf://{repo}"
        assert scans_of(postgresql_database, f"hf://{repo}") == [(document["scan_id"], "complete")]
    assert [row["status"] for row in queue_rows(postgresql_database)] == ["succeeded"] * 3
    assert workers.stop() == [0, 0]


def test_the_job_and_its_queue_entry_commit_together(pg_api: Api, postgresql_database: str) -> None:
    service = pg_api.service
    job = ScanJob(
        job_id="d" * 32,
        target="hf://acme/tiny",
        policy_name=service.policies.name,
        policy_digest=service.policies.digest,
        environment=None,
        status=JobStatus.QUEUED,
        requested_by="test",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
    )

    def enqueue_then_break(connection: object) -> None:
        service.runner.enqueue(connection, job.job_id)
        raise RuntimeError("the request broke after queueing")

    with pytest.raises(RuntimeError):
        service.records.add_job(job, enqueue=enqueue_then_break)
    assert queue_rows(postgresql_database) == []
    assert service.records.unfinished_jobs() == []

    service.records.add_job(job, enqueue=lambda c: service.runner.enqueue(c, job.job_id))
    assert [row["lock"] for row in queue_rows(postgresql_database)] == [job.job_id]


def test_a_worker_needs_postgresql(sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["worker", "--database-url", sqlite_url])
    assert result.exit_code == 2
    assert "workers need the service's PostgreSQL database" in result.output
    assert "Traceback" not in result.output


def _migration_0012() -> Any:
    path = ROOT / "migrations" / "versions" / "0012_job_queue.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_queue_schema_is_the_installed_procrastinates() -> None:
    # A procrastinate whose schema moved on needs a verifier migration that applies its
    # migrations (procrastinate/sql/migrations) before the bound in pyproject.toml moves.
    from procrastinate.schema import SchemaManager

    newest = max(path.stem for path in Path(SchemaManager.get_migrations_path()).glob("*.sql"))
    assert newest == _migration_0012().PROCRASTINATE_SCHEMA_VERSION


def _queue_tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = sa.inspect(connection).get_table_names()
            return {name for name in names if name.startswith("procrastinate_")}
    finally:
        engine.dispose()


QUEUE_TABLES = {
    "procrastinate_events",
    "procrastinate_jobs",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}


def test_db_upgrade_applies_the_queue_schema_and_down_again(postgresql_url: str) -> None:
    from alembic import command

    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", postgresql_url])
    assert result.exit_code == 0, result.output
    assert _queue_tables(postgresql_url) == QUEUE_TABLES
    store = Store(postgresql_url)
    try:
        config = store._alembic_config()
        with store._engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0011")
        assert _queue_tables(postgresql_url) == set()
        assert store.current_revision() == "0011"
        assert store.upgrade() == SCHEMA_HEAD
    finally:
        store.close()
    assert _queue_tables(postgresql_url) == QUEUE_TABLES
    again = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", postgresql_url])
    assert again.exit_code == 0, again.output


def test_a_queue_schema_applied_before_is_kept(postgresql_url: str) -> None:
    # An operator who ran procrastinate's own `schema --apply` first: verifier's migration
    # keeps that schema instead of failing on it.
    from procrastinate.schema import SchemaManager

    engine = sa.create_engine(postgresql_url)
    try:
        with engine.begin() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            with driver.cursor() as cursor:
                cursor.execute(SchemaManager.get_schema())
    finally:
        engine.dispose()
    with Store.open(postgresql_url) as store:
        assert store.current_revision() == SCHEMA_HEAD
    assert _queue_tables(postgresql_url) == QUEUE_TABLES


def test_sqlite_has_no_queue_schema(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        assert store.current_revision() == SCHEMA_HEAD
    assert _queue_tables(sqlite_url) == set()


def decisions_of(database_url: str, target_prefix: str) -> list[str]:
    """The scan id of every recorded decision about targets starting with the prefix."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text(
                    "SELECT d.scan_id FROM decisions d JOIN scans s ON s.id = d.scan_id "
                    "WHERE s.target LIKE :prefix"
                ),
                {"prefix": target_prefix + "%"},
            )
            return [str(row[0]) for row in rows]
    finally:
        engine.dispose()


def test_a_worker_killed_mid_scan_leaves_the_job_to_another(
    pg_api: Api, hub: HubEmulator, workers: Workers, postgresql_database: str, tmp_path: Path
) -> None:
    hub.add_repo("acme/tiny", model_files())
    job = submit(pg_api, "hf://acme/tiny")
    pause = tmp_path / "pause"
    pause.mkdir()

    # The first worker scans, then waits just before recording: killed there, it has done all
    # the work of the scan and recorded none of it.
    doomed = workers.start("--name", "doomed", env={PAUSE_ENV: str(pause)})
    marker = pause / f"paused-{doomed.pid}"
    wait_for("the first worker to reach the pause", marker.exists)
    assert job_document(pg_api, job)["status"] == "running"
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
    assert scans_of(postgresql_database, "hf://acme/tiny") == []

    # Another worker notices the missing heartbeats and runs the job again, to its end.
    workers.start("--name", "rescuer")
    document = wait_for("the job to finish", lambda: finished(pg_api, job))
    assert document["status"] == "complete", (document, workers.log(1))
    assert document["result"]["decision"] == "allow"
    scan_id = document["scan_id"]
    assert scans_of(postgresql_database, "hf://acme/tiny") == [(scan_id, "complete")]
    assert decisions_of(postgresql_database, "hf://acme/tiny") == [scan_id]
    [entry] = queue_rows(postgresql_database)
    # procrastinate counts runs that ended: the killed one (taken again) and the one that
    # finished.
    assert entry["status"] == "succeeded" and entry["attempts"] == 2
    assert not (pause / "release").exists()  # the second run never paused: it was not told to


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """`verifier serve` as a real process on a loopback port."""

    def __init__(self, database_url: str, logs: Path) -> None:
        self.database_url, self.logs = database_url, logs
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with (self.logs / f"server-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "verifier",
                    "serve",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.database_url,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        wait_for("the server to answer", self._healthy)

    def _healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, (
            self.logs / f"server-{self.starts - 1}.log"
        ).read_text()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE_SECONDS)


@pytest.fixture
def server(postgresql_database: str, tmp_path: Path) -> Iterator[Server]:
    running = Server(postgresql_database, tmp_path)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.kill()


def test_a_server_restart_loses_no_queued_job(
    server: Server, hub: HubEmulator, workers: Workers, postgresql_database: str
) -> None:
    made = CliRunner().invoke(
        cli,
        [
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "scanner",
            "--database-url",
            server.database_url,
        ],
    )
    assert made.exit_code == 0, made.output
    headers = {"Authorization": f"Bearer {made.output.strip().splitlines()[-1]}"}
    repos = ["acme/first", "acme/second"]
    for repo in repos:
        hub.add_repo(repo, model_files())

    server.start()
    jobs = []
    for repo in repos:
        response = httpx.post(
            f"{server.url}/api/v1/scans", json={"target": f"hf://{repo}"}, headers=headers
        )
        assert response.status_code == 202, response.text
        jobs.append(response.json()["id"])
    server.kill()  # no worker has run anything yet

    server.start()
    for job in jobs:
        document = httpx.get(f"{server.url}/api/v1/scans/{job}", headers=headers).json()
        assert document["status"] == "queued"
    assert [row["status"] for row in queue_rows(postgresql_database)] == ["todo", "todo"]
    workers.start()

    def done(job: str) -> dict[str, Any] | None:
        document: dict[str, Any] = httpx.get(
            f"{server.url}/api/v1/scans/{job}", headers=headers
        ).json()
        return document if document["status"] in ("complete", "failed") else None

    for repo, job in zip(repos, jobs, strict=True):
        document = wait_for(f"job {job}", lambda job=job: done(job))
        assert document["status"] == "complete", (document, workers.log(0))
        assert scans_of(postgresql_database, f"hf://{repo}") == [(document["scan_id"], "complete")]
    assert [row["status"] for row in queue_rows(postgresql_database)] == ["succeeded"] * 2


def _waiting_on_a_blob(database_url: str) -> bool:
    """Whether some session of this database waits for an advisory lock (a held blob)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            waiting = connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND NOT l.granted "
                    "AND d.datname = current_database()"
                )
            ).scalar_one()
            return bool(waiting)
    finally:
        engine.dispose()


def test_two_workers_never_fetch_one_blob_twice(
    pg_api: Api, hub: HubEmulator, workers: Workers, postgresql_database: str, tmp_path: Path
) -> None:
    # Two models that share their weights (the same LFS blob), and differ in their config.
    hub.add_repo("acme/first", model_files())
    other = {**model_files(), "config.json": b'{"model_type": "other", "hidden_size": 4}'}
    hub.add_repo("acme/second", other)
    pause = tmp_path / "pause"
    pause.mkdir()

    holder = workers.start("--name", "holder", env={PAUSE_ENV: str(pause)})
    first = submit(pg_api, "hf://acme/first")
    wait_for("the first job to hold the blob", (pause / f"paused-{holder.pid}").exists)
    second = submit(pg_api, "hf://acme/second")
    workers.start("--name", "waiter")
    # The second job, on the other worker, waits for the blob instead of fetching it too.
    wait_for("the second job to wait for the blob", lambda: _waiting_on_a_blob(postgresql_database))
    (pause / "release").touch()

    documents = [
        wait_for(f"job {job}", lambda job=job: finished(pg_api, job)) for job in (first, second)
    ]
    assert [d["status"] for d in documents] == ["complete", "complete"], (
        documents,
        workers.log(0),
        workers.log(1),
    )
    weights = [
        path
        for path in hub.downloads()
        if path.endswith("/model.safetensors") and not path.startswith("cdn:")
    ]
    assert len(weights) == 1 and weights[0].startswith("/acme/first/"), weights
    files = [{f["path"]: f["sha256"] for f in d["result"]["files"]} for d in documents]
    assert files[0]["model.safetensors"] == files[1]["model.safetensors"]
    assert files[0]["config.json"] != files[1]["config.json"]


#: Servers started at once on one database, and the unfinished jobs they find.
STARTING_SERVERS = 6
UNFINISHED_JOBS = 5


def test_servers_starting_at_once_queue_each_unfinished_job_once(
    postgresql_database: str,
) -> None:
    first, _ = start(postgresql_database)
    try:
        jobs = [
            first.submit_scan(f"hf://acme/left-{i}", policy=None, environment=None, actor="test")
            for i in range(UNFINISHED_JOBS)
        ]
    finally:
        first.close()
    assert all(job.status is JobStatus.QUEUED for job in jobs)
    engine = sa.create_engine(postgresql_database)
    try:
        with engine.begin() as connection:
            # As if recorded before the database had workers: every server that starts
            # finds them unfinished and not held by the queue.
            connection.execute(
                sa.text("DELETE FROM procrastinate_jobs WHERE queue_name = :queue"),
                {"queue": QUEUE},
            )
    finally:
        engine.dispose()
    assert queue_rows(postgresql_database) == []
    config = ServiceConfig(database_url=postgresql_database, policy_path=default_policy_path())
    servers = [Service(config) for _ in range(STARTING_SERVERS)]
    barrier = threading.Barrier(STARTING_SERVERS)
    queued: list[int] = []
    failures: list[BaseException] = []

    def begin(service: Service) -> None:
        barrier.wait()
        try:
            queued.append(service.start())
        except BaseException as exc:  # reported below, on the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=begin, args=(service,)) for service in servers]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE_SECONDS)
    finally:
        for service in servers:
            service.close()
    assert failures == []
    locks = [row["lock"] for row in queue_rows(postgresql_database)]
    assert sorted(locks) == sorted(job.job_id for job in jobs)
    assert sum(queued) == UNFINISHED_JOBS
