"""Migrations under stress: concurrent first use, kills part-way, half-made schemas, fast path.

Every process here is real: the concurrent scans are eight `verifier scan` processes released
at once by a barrier file, and each kill is a SIGKILL the migrating process sends itself at a
chosen SQL statement (a deterministic point, not a timer), so the test is repeatable.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.command import upgrade as alembic_upgrade
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from verifier.cli import cli
from verifier.errors import StoreError
from verifier.store import Store
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.tables import Base, is_verifier_object

ROOT = Path(__file__).resolve().parents[2]
CONCURRENT = 8
#: Seed of the kill points; change it to explore other points, keep it fixed in CI.
KILL_SEED = 14
KILL_POINTS = 4

#: A process that loads everything first, then waits for the barrier file, then runs the CLI:
#: the eight processes reach the migration together instead of one import time apart.
RACER = textwrap.dedent(
    """
    import os, sys, time
    import verifier.pipeline, verifier.store
    from verifier.cli import main
    ready, barrier = sys.argv[1], sys.argv[2]
    open(ready, "w").close()
    while not os.path.exists(barrier):
        time.sleep(0.005)
    sys.argv = ["verifier", *sys.argv[3:]]
    sys.exit(main())
    """
)

#: A process that kills itself with SIGKILL just before its Nth SQL statement (or the commit,
#: when N is past the last statement) while opening a new database.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from verifier.store import Store

    kill_at = int(sys.argv[2])
    seen = 0

    def count(*_args):
        global seen
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    event.listen(Engine, "before_cursor_execute", count)
    event.listen(Engine, "commit", count)
    Store.open(sys.argv[1]).close()
    print(seen)
    """
)


def _engine(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _schema(url: str) -> tuple[set[str], str | None]:
    """The verifier tables present, and the recorded revision (None when none)."""
    for connection in _engine(url):
        names = set(sa.inspect(connection).get_table_names())
        revision = None
        if "alembic_version" in names:
            row = connection.execute(sa.text("SELECT version_num FROM alembic_version")).first()
            revision = None if row is None else str(row[0])
        return names & set(Base.metadata.tables), revision
    raise AssertionError("unreachable")


def _assert_at_head(url: str) -> None:
    for connection in _engine(url):
        assert (
            compare_metadata(
                MigrationContext.configure(connection, opts={"include_name": is_verifier_object}),
                Base.metadata,
            )
            == []
        )
    assert _schema(url) == (set(Base.metadata.tables), SCHEMA_HEAD)


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["VERIFIER_HOME"] = str(tmp_path / "home")
    env.pop("VERIFIER_DATABASE_URL", None)
    env["PYTHONPATH"] = str(ROOT)
    return env


def test_static_head_is_the_migrations_head() -> None:
    # Store.open and the scan's SQLite recorder trust SCHEMA_HEAD (verifier/store/revision.py)
    # to skip alembic; a new migration must move it too, there and nowhere else.
    with Store("sqlite://") as store:
        config = store._alembic_config()
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD


def test_every_migration_has_a_row_in_the_revision_table() -> None:
    # docs/database.md's table is how an administrator learns what an upgrade changes.
    with Store("sqlite://") as store:
        config = store._alembic_config()
    revisions = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    text = (ROOT / "docs" / "database.md").read_text()
    table = text.split("| revision | what |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\d{4})` \|", table, re.M)
    assert sorted(rows) == rows, "rows in revision order"
    assert set(rows) == revisions
    assert len(rows) == len(revisions), "one row per revision"


def test_a_database_at_head_is_opened_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'verifier.db'}"
    Store.open(url).close()
    code = (
        "import json, sys\nfrom verifier.store import Store\n"
        f"Store.open({url!r}).close()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(result.stdout) == []
    # The same check sees alembic when a migration is needed.
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = subprocess.run(
        [sys.executable, "-c", code.replace(url, fresh)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert json.loads(result.stdout) != []


def test_concurrent_first_scans_all_succeed(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    barrier = tmp_path / "go"
    env = _env(tmp_path)
    args = ["scan", str(tiny_model), "-q", "--format", "json", "--database-url", database_url]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path / f"ready{i}"), str(barrier), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for i in range(CONCURRENT)
    ]
    try:
        # Let them all load (each says so, then spins on the barrier); release them together.
        deadline = time.monotonic() + 600
        while len(list(tmp_path.glob("ready*"))) < CONCURRENT and time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in procs):
                break
            time.sleep(0.05)
        barrier.touch()
        outputs = [proc.communicate(timeout=600) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    codes = [proc.returncode for proc in procs]
    assert codes == [0] * CONCURRENT, [err for _, err in outputs]
    scan_ids = {json.loads(out)["scan_id"] for out, _ in outputs}
    assert len(scan_ids) == CONCURRENT
    _assert_at_head(database_url)
    with Store.open(database_url) as store:
        assert {s.scan_id for s in store.list_scans()} == scan_ids


def _statement_count(url: str, tmp_path: Path) -> int:
    """How many statements (and commits) a first migration of this engine takes."""
    result = subprocess.run(
        [sys.executable, "-c", KILLER, url, "0"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=ROOT,
        check=True,
    )
    return int(result.stdout.strip())


def _kill_points(total: int) -> list[int]:
    """The first statement, the last event (the commit), and seeded points in between."""
    inner = random.Random(KILL_SEED).sample(range(2, total), KILL_POINTS)
    return sorted({1, total, *inner})


def _empty(url: str) -> None:
    """Drop every verifier table and the revision (the PostgreSQL tests reuse one schema)."""
    for connection in _engine(url):
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table.name}"'))
        connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
        connection.commit()


def test_a_first_migration_killed_anywhere_recovers(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    probe = (
        database_url
        if database_url.startswith("postgresql")
        else f"sqlite:///{tmp_path / 'probe' / 'verifier.db'}"
    )
    total = _statement_count(probe, tmp_path)
    if probe == database_url:  # PostgreSQL: one schema per test; empty it again
        _empty(database_url)
    assert total > 20  # the whole migration, DDL included, is seen
    for point in _kill_points(total):
        url = (
            database_url
            if database_url.startswith("postgresql")
            else f"sqlite:///{tmp_path / f'kill{point}' / 'verifier.db'}"
        )
        killed = subprocess.run(
            [sys.executable, "-c", KILLER, url, str(point)],
            capture_output=True,
            env=_env(tmp_path),
            cwd=ROOT,
            check=False,
        )
        assert killed.returncode == -signal.SIGKILL, point
        # Atomic: what a kill leaves is nothing at all, never a half-made schema.
        assert _schema(url) == (set(), None), point
        result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
        assert result.exit_code == 0, (point, result.output)
        _assert_at_head(url)
        scanned = CliRunner().invoke(
            cli, ["scan", str(tiny_model), "-q", "--format", "json", "--database-url", url]
        )
        assert scanned.exit_code == 0, (point, scanned.output)
        if url == database_url:
            _empty(url)


def _half_made(url: str, *, revision: str = "0002") -> None:
    """What an older verifier killed in its first migration left: tables, no revision row."""
    with Store(url) as store:
        config = store._alembic_config()
        with store._engine.begin() as connection:
            config.attributes["connection"] = connection
            alembic_upgrade(config, revision)
            connection.execute(sa.text("DELETE FROM alembic_version"))


def test_a_half_made_first_schema_is_rebuilt(database_url: str) -> None:
    _half_made(database_url)
    assert _schema(database_url)[0] and _schema(database_url)[1] is None
    Store.open(database_url).close()
    _assert_at_head(database_url)


def test_a_half_made_schema_holding_rows_is_refused(database_url: str) -> None:
    _half_made(database_url)
    for connection in _engine(database_url):
        connection.execute(
            sa.text(
                "INSERT INTO scans (id, target, source_type, source, started_at, finished_at, "
                "status, tool_version) VALUES ('a', 't', 'local', '{}', "
                "'2024-01-01 00:00:00+00:00', '2024-01-01 00:00:00+00:00', 'complete', '0')"
            )
        )
        connection.commit()
    with pytest.raises(StoreError, match="no schema revision"):
        Store.open(database_url)
    assert _schema(database_url)[1] is None  # nothing was dropped or changed


def test_the_migration_lock_waits_then_gives_up(tmp_path: Path) -> None:
    from verifier.store.database import _file_lock

    path = tmp_path / "verifier.db.lock"
    with (
        _file_lock(path, timeout=1),
        # Another open file description (another process, in real use) cannot take it.
        pytest.raises(StoreError, match="another verifier process"),
        _file_lock(path, timeout=0.1),
    ):
        pass
    with _file_lock(path, timeout=0.1):  # released when its holder is done
        pass
    assert path.exists()  # never removed: removing a lock file races its next user
