"""One `verifier serve` per SQLite database: a second process on the same file is refused
(exit 3, one line naming the first) before it runs any job; a dead server frees the file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import free_port
from tests.service.test_workers import DEADLINE_SECONDS, wait_for
from verifier.policy import default_policy_path
from verifier.service.core import Service, ServiceConfig
from verifier.store.database import Store
from verifier.store.server_lock import LOCK_SUFFIX, ServerBusyError, hold_server_lock

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a refused second server may take to start and exit (it is a deadline, not a
#: measure: refusal takes the time of an import and a database open).
REFUSAL_SECONDS = 120.0


def _serve(database: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "verifier",
                "serve",
                "--port",
                str(port),
                "--upkeep-interval",
                "0",
                "--notify-interval",
                "0",
                "--database-url",
                f"sqlite:///{database}",
            ],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_for("the server to answer", healthy)
    return process, url


def _second_serve(database: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "serve",
            "--port",
            str(free_port()),
            "--database-url",
            f"sqlite:///{database}",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=REFUSAL_SECONDS,  # a server that is not refused runs until this
        check=False,
    )


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    process.send_signal(sig)
    try:
        process.wait(timeout=DEADLINE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_a_second_server_on_one_sqlite_file_is_refused_until_the_first_is_gone(
    tmp_path: Path,
) -> None:
    database = tmp_path / "v.db"
    first, _ = _serve(database, tmp_path / "first.log")
    try:
        second = _second_serve(database)
        assert second.returncode == 3, second.stderr
        [line] = second.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith("error: another verifier server (pid ")
        assert f"pid {first.pid} " in line and str(database) in line and "PostgreSQL" in line
        assert second.stdout == ""
        assert first.poll() is None  # the first goes on serving
    finally:
        # Killed outright: the kernel lets go of the lock with the process.
        _stop(first, signal.SIGKILL)
    service = Service(
        ServiceConfig(database_url=f"sqlite:///{database}", policy_path=default_policy_path())
    )
    service.close()
    assert (tmp_path / f"v.db{LOCK_SUFFIX}").exists()


def test_services_of_one_process_share_the_lock_and_the_last_lets_go(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    config = ServiceConfig(database_url=url, policy_path=default_policy_path())
    one, two = Service(config), Service(config)
    one.close()
    # Still held by the second: another process is refused.
    assert _second_serve(tmp_path / "v.db").returncode == 3
    two.close()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from verifier.store.database import Store;"
            "from verifier.store.server_lock import hold_server_lock;"
            f"hold_server_lock(Store.open({url!r})).release()",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr


def test_a_lock_held_elsewhere_is_a_store_error_and_postgresql_needs_none(
    tmp_path: Path, postgresql_database: str
) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys;"
            "from verifier.store.database import Store;"
            "from verifier.store.server_lock import hold_server_lock;"
            f"hold_server_lock(Store.open({url!r})); print('held', flush=True); sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store = Store.open(url)
        try:
            with pytest.raises(ServerBusyError, match=f"pid {holder.pid} "):
                hold_server_lock(store)
        finally:
            store.close()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=DEADLINE_SECONDS)
        assert holder.stdout is not None
        holder.stdout.close()
    postgres = Store.open(postgresql_database)
    try:
        lock = hold_server_lock(postgres)
        assert lock.path is None
        lock.release()
    finally:
        postgres.close()
