"""`verifier scan`'s SQLite recorder: its statements are SQLAlchemy's, its rows the Store's."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import uuid
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from tests.evidence.recorded import allowed_report, denied_report
from tests.store.test_store import make_report
from verifier.bans import BanKind
from verifier.errors import StoreError
from verifier.model import (
    Decision,
    DeclaredFile,
    FileFormat,
    FileResult,
    LineageStatus,
    ScanReport,
    ScanStatus,
    VerifiedLineage,
)
from verifier.policy.publishers import PublisherRegistry
from verifier.store import Store, sqlite_statements
from verifier.store.bans import BanRecords
from verifier.store.database import _masked
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.scan_rows import FILES_PER_LOOKUP, RECORDED_TABLES, failed_report
from verifier.store.scan_tables import (
    BAN_GENERATION,
    BAN_IN_FORCE,
    IDENTICAL_FILES,
    LINEAGE_BLOBS,
    LINEAGE_CANDIDATES,
    LINEAGE_KEY,
    LINEAGE_OLDER,
    METADATA,
    UTCDateTime,
    insert_scan,
)
from verifier.store.sqlite_recorder import (
    SQLiteRecorder,
    _timestamp,
    open_recorder,
    sqlite_path,
    write_rows,
)

MODULE = Path(sqlite_statements.__file__)
DECIDED = datetime(2024, 5, 1, 12, 0, 3, 5, tzinfo=UTC)


def _kind(column: sa.Column[Any]) -> str:
    """How the recorder binds a column: as SQLAlchemy's SQLite dialect would, for its type."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        return "json"
    if isinstance(kind, UTCDateTime):
        return "timestamp"
    if isinstance(kind, (sa.String, sa.Integer, sa.LargeBinary, sa.Boolean)):
        return "plain"  # bound as given (sqlite3 binds a bool as the integer SQLAlchemy does)
    raise AssertionError(f"{column}: type {kind!r} has no binding in sqlite_recorder; add one")


def compiled() -> dict[str, Any]:
    """What the generated module must hold, compiled by SQLAlchemy from `scan_tables` today."""
    dialect = sqlite.dialect()
    inserts = {}
    for name in RECORDED_TABLES:
        table = METADATA.tables[name]
        columns = [c for c in table.c if c is not table.autoincrement_column]
        statement = sa.insert(table).compile(dialect=dialect, column_keys=[c.key for c in columns])
        inserts[name] = (str(statement), tuple(c.key for c in columns), tuple(map(_kind, columns)))
    literal = {"literal_binds": True}
    ban = BAN_IN_FORCE.compile(dialect=dialect, compile_kwargs=literal)
    generation = BAN_GENERATION.compile(dialect=dialect, compile_kwargs=literal)
    key = LINEAGE_KEY.compile(dialect=dialect, compile_kwargs=literal)
    identical = IDENTICAL_FILES.compile(dialect=dialect)
    assert identical.positiontup == ["sha256s"]  # the one parameter the recorder expands
    candidates = LINEAGE_CANDIDATES.compile(dialect=dialect)
    assert candidates.positiontup == ["hidden_size", "version"]  # bound in this order
    older = LINEAGE_OLDER.compile(dialect=dialect)
    assert older.positiontup == ["hidden_size", "version"]  # bound as the candidates are
    blobs = LINEAGE_BLOBS.compile(dialect=dialect)
    assert blobs.positiontup == ["scan_ids"]
    return {
        "SCHEMA_REVISION": "SELECT version_num FROM alembic_version",
        "BAN_IN_FORCE": str(ban),
        "BAN_GENERATION": str(generation),
        "LINEAGE_KEY": str(key),
        "IDENTICAL_FILES": str(identical),
        "LINEAGE_CANDIDATES": str(candidates),
        "LINEAGE_OLDER": str(older),
        "LINEAGE_BLOBS": str(blobs),
        "DATETIME_FORMAT": sqlite.DATETIME._storage_format,
        "INSERTS": inserts,
    }


def render(values: dict[str, Any]) -> str:
    lines = [
        '"""The SQLite statements of `verifier scan`, compiled from `scan_tables` by SQLAlchemy.',
        "",
        "Generated: `tests/store/test_sqlite_recorder.py` fails when this differs from what",
        "SQLAlchemy compiles from the tables today, and VERIFIER_UPDATE_GOLDEN=1 rewrites it (then",
        "run `ruff format`). Do not edit by hand.",
        '"""',
        "",
        "# ruff: noqa: E501  (statements as SQLAlchemy compiles them, one line each)",
        "",
        "#: The schema revision a database is at (`Store.open` asks the same).",
        f"SCHEMA_REVISION = {values['SCHEMA_REVISION']!r}",
        "#: A row when a ban is in force (`scan_tables.BAN_IN_FORCE`).",
        f"BAN_IN_FORCE = {values['BAN_IN_FORCE']!r}",
        "#: How many bans and lifts were ever recorded (`scan_tables.BAN_GENERATION`).",
        f"BAN_GENERATION = {values['BAN_GENERATION']!r}",
        "#: The store's lineage key (`scan_tables.LINEAGE_KEY`).",
        f"LINEAGE_KEY = {values['LINEAGE_KEY']!r}",
        "#: Hub scans that recorded some of these files (`scan_tables.IDENTICAL_FILES`): the",
        "#: recorder writes one `?` per digest where SQLAlchemy's expanding parameter is marked.",
        f"IDENTICAL_FILES = {values['IDENTICAL_FILES']!r}",
        "#: Recorded fingerprints to compare a new one with (`scan_tables.LINEAGE_CANDIDATES`),",
        "#: bound with the hidden size and the fingerprint version.",
        f"LINEAGE_CANDIDATES = {values['LINEAGE_CANDIDATES']!r}",
        "#: Models of that width fingerprinted by an older version (`scan_tables.LINEAGE_OLDER`),",
        "#: bound as above.",
        f"LINEAGE_OLDER = {values['LINEAGE_OLDER']!r}",
        "#: The chosen fingerprints (`scan_tables.LINEAGE_BLOBS`): one `?` per scan id, as above.",
        f"LINEAGE_BLOBS = {values['LINEAGE_BLOBS']!r}",
        "#: How SQLAlchemy's SQLite dialect stores a timestamp (in UTC, without its offset).",
        f"DATETIME_FORMAT = {values['DATETIME_FORMAT']!r}",
        "#: Per table a scan writes: the INSERT statement, its columns in order, and how each",
        "#: column is bound (`json`, `timestamp` or `plain`).",
        "INSERTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {",
    ]
    for name, (statement, columns, kinds) in values["INSERTS"].items():
        lines += [f"    {name!r}: (", f"        {statement!r},", f"        {columns!r},"]
        lines += [f"        {kinds!r},", "    ),"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def test_the_statements_are_what_sqlalchemy_compiles_from_the_tables() -> None:
    expected = compiled()
    if os.environ.get("VERIFIER_UPDATE_GOLDEN") == "1":
        MODULE.write_text(render(expected))
    actual = {name: getattr(sqlite_statements, name) for name in expected}
    assert actual == expected, f"{MODULE} is stale: run with VERIFIER_UPDATE_GOLDEN=1"


def _weights_report() -> ScanReport:
    """A scan that recorded a weight fingerprint (the one table the other reports leave out)."""
    lineage = VerifiedLineage(
        status=LineageStatus.VERIFIED,
        repo_id="acme/tiny",
        publisher="acme",
        fingerprint=bytes(range(256)) * 4,
        hidden_size=896,
    )
    return dataclasses.replace(make_report(), verified_lineage=lineage)


def _failed(scan_id: str) -> ScanReport:
    return failed_report(
        scan_id=scan_id,
        target="org/model",
        started_at="2024-05-01T14:00:00+02:00",
        finished_at="2024-05-01T12:00:01Z",
        tool_version="0.1.0",
        error="connection reset while fetching model.bin",
    )


def _reports() -> list[tuple[ScanReport, str | None]]:
    """Scans that between them write every table a scan is recorded in."""
    return [
        (make_report(), None),
        (allowed_report(), None),
        (denied_report(), None),
        (_weights_report(), None),
        (_failed(uuid.uuid4().hex), "connection reset while fetching model.bin"),
    ]


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every recorded table's rows, each value with its SQLite storage class, in row order."""
    with closing(sqlite3.connect(path)) as connection:
        dump = {}
        for table in RECORDED_TABLES:
            columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
            cells = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            query = f"SELECT {cells} FROM {table} ORDER BY rowid"
            dump[table] = connection.execute(query).fetchall()
        return dump


def _new_database(path: Path) -> str:
    url = f"sqlite:///{path}"
    Store.open(url).close()
    return url


def test_the_recorder_writes_the_rows_the_store_writes(tmp_path: Path) -> None:
    by_core = _new_database(tmp_path / "core.db")
    _new_database(tmp_path / "sqlite3.db")
    reports = _reports()
    engine = sa.create_engine(by_core)
    try:
        with engine.begin() as connection:
            for report, error in reports:
                insert_scan(connection, report, error=error, decided_at=DECIDED)
    finally:
        engine.dispose()
    with closing(sqlite3.connect(tmp_path / "sqlite3.db")) as connection, connection:
        for report, error in reports:
            write_rows(connection, report, error=error, decided_at=DECIDED)
    expected = _dump(tmp_path / "core.db")
    assert all(expected.values()), "every recorded table must hold a row to be compared"
    assert _dump(tmp_path / "sqlite3.db") == expected


def test_a_plain_sqlite_file_at_head_is_recorded_without_the_store(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    with open_recorder(url) as recorder:
        assert isinstance(recorder, SQLiteRecorder)


@pytest.mark.parametrize(
    "name",
    ["new.db", "folder/new.db"],  # a file to create, and a folder too
)
def test_a_database_not_at_head_is_opened_by_the_store(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path / name}"
    with open_recorder(url) as recorder:
        assert isinstance(recorder, Store)
        assert recorder.current_revision() == SCHEMA_HEAD


def test_an_unreadable_file_is_the_stores_error(tmp_path: Path) -> None:
    path = tmp_path / "verifier.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match=r"verifier\.db"):
        open_recorder(f"sqlite:///{path}")


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("sqlite:////var/lib/verifier.db", True),
        ("sqlite:///relative/verifier.db", True),
        ("sqlite+pysqlite:////srv/verifier db/v.db", True),
        ("sqlite:////var/lib/verifier.db?timeout=30", False),
        ("sqlite:///file:verifier.db?mode=ro&uri=true", False),
        ("sqlite:///:memory:", False),
        ("sqlite://", False),
        ("sqlite:////var/lib/%76erifier.db", False),
        ("sqlite+aiosqlite:////var/lib/verifier.db", False),
        ("postgresql+psycopg://postgres@127.0.0.1:5432/verifier", False),
    ],
)
def test_plain_sqlite_urls_name_the_file_sqlalchemy_opens(url: str, plain: bool) -> None:
    path = sqlite_path(url)
    assert (path is not None) is plain
    if path is not None:
        database = sa.make_url(url).database
        assert database is not None and path == os.path.abspath(database)
        assert _masked(url) == url  # the recorder's messages name it as the Store's do


def test_round_trips_through_the_store(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    report = make_report()
    failed = _failed(uuid.uuid4().hex)
    with open_recorder(url) as recorder:
        recorder.record_scan(report)
        recorder.record_failed_scan(
            scan_id=failed.scan_id,
            target=failed.target,
            started_at=failed.started_at,
            finished_at=failed.finished_at,
            tool_version=failed.tool_version,
            error="connection reset while fetching model.bin",
        )
    with Store.open(url) as store:
        assert store.get_scan(report.scan_id) == report
        read = store.get_scan(failed.scan_id)
        assert read.status is ScanStatus.FAILED and read.verdict.decision is Decision.DENY
        assert [f.code for f in read.findings] == ["SCAN-FAILED"]


def test_a_refused_write_keeps_nothing_and_says_why(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    report = make_report()
    extra = FileResult(path="extra.bin", size=1, sha256=None, git_sha1=None, format=FileFormat.ZIP)
    with open_recorder(url) as recorder:
        recorder.record_scan(report)
        with pytest.raises(StoreError) as caught:
            recorder.record_scan(dataclasses.replace(report, files=(*report.files, extra)))
    assert str(caught.value) == (
        f"cannot record scan {report.scan_id} in the database at {url}: "
        "UNIQUE constraint failed: scans.id"
    )
    assert [len(rows) for rows in _dump(tmp_path / "verifier.db").values()][:4] == [1, 2, 3, 1]


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        _timestamp(datetime(2024, 5, 1, 12))


def test_bans_in_force_are_read_as_the_store_reads_them(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    facts = allowed_report().facts
    publishers = PublisherRegistry({})
    with open_recorder(url) as recorder:
        assert recorder.bans_reaching(facts, publishers=publishers) == ()
    with Store.open(url) as store:
        records = BanRecords(store)
        lifted = records.add_ban(BanKind.PUBLISHER, "Qwen", reason="lifted", actor="t")
        records.lift_ban(lifted.ban_id, reason="ok", actor="t")
    with open_recorder(url) as recorder:
        assert recorder.bans_reaching(facts, publishers=publishers) == ()
    with Store.open(url) as store:
        BanRecords(store).add_ban(BanKind.PUBLISHER, "Qwen", reason="compromised", actor="t")
        expected = store.bans_reaching(facts, publishers=publishers)
    assert expected, "the ban must reach the model for the comparison to mean anything"
    with open_recorder(url) as recorder:
        assert recorder.bans_reaching(facts, publishers=publishers) == expected


def test_recorded_files_are_found_as_the_store_finds_them(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    hub = allowed_report()
    with Store.open(url) as store:
        store.record_scan(hub)
        store.record_scan(make_report())  # a local scan: never a Hub model's file
        digests = [f.sha256 or "" for f in (*hub.files, *make_report().files)]
        # More digests than one query takes, so that the lookup is split.
        wanted = [*digests, *(f"{n:064x}" for n in range(FILES_PER_LOOKUP))]
        expected = store.identical_files(wanted)
    assert len(expected) == len(hub.files)
    with open_recorder(url) as recorder:
        assert recorder.identical_files(wanted) == expected
        assert recorder.identical_files([]) == []


def test_the_lineage_key_is_the_stores(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    with open_recorder(url) as recorder:
        made = recorder.lineage_key()  # the first one is made (by the Store)
    with open_recorder(url) as recorder:
        assert isinstance(recorder, SQLiteRecorder)
        read = recorder.lineage_key()
    with Store.open(url) as store:
        assert read.secret == made.secret == store.lineage_key().secret


def test_verified_files_are_the_stores(tmp_path: Path) -> None:
    url = _new_database(tmp_path / "verifier.db")
    hub = allowed_report()
    with Store.open(url) as store:
        store.record_scan(hub)
        declared = [DeclaredFile(f.path, f.size, f.sha256, None, True) for f in hub.files]
        expected = [(store.verified_file(d), store.recorded_sha256(d)) for d in declared]
    assert any(verified is not None for verified, _ in expected)
    with open_recorder(url) as recorder:
        assert [(recorder.verified_file(d), recorder.recorded_sha256(d)) for d in declared] == (
            expected
        )


def _fingerprint_scan(
    key_id: str,
    *,
    repo: str,
    commit: str | None,
    hidden: int = 8,
    status: bool = True,
    started: datetime | None = None,
) -> ScanReport:
    """A scan that recorded a (small, valid) fingerprint made with the key `key_id`."""
    import numpy as np

    from verifier.lineage.fingerprint import FINGERPRINT_VERSION, Fingerprint, UnitProfile

    fingerprint = Fingerprint(
        version=FINGERPRINT_VERSION,
        hidden_size=hidden,
        anchor_ids=tuple(range(3, 19)),
        gram=np.eye(16, dtype=np.float32),
        matrices=(UnitProfile("w@in", np.ones((16, 4), dtype=np.float32)),),
        key_id=key_id,
    )
    lineage = VerifiedLineage(
        status=LineageStatus.VERIFIED,
        repo_id=repo,
        publisher=repo.split("/")[0],
        fingerprint=fingerprint.to_bytes(),
        hidden_size=hidden,
    )
    report = dataclasses.replace(
        make_report(**({"started": started} if started is not None else {})),
        scan_id=uuid.uuid4().hex,
        verified_lineage=lineage,
        source={"type": "huggingface", "repo_id": repo, **({"commit": commit} if commit else {})},
    )
    return dataclasses.replace(
        report, status=ScanStatus.COMPLETE if status else ScanStatus.INCOMPLETE
    )


def test_lineage_references_are_read_as_the_store_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered bases first, then the newest scan of each other model up to the cap, without
    # incomplete scans, other hidden sizes or other stores' keys: through `sqlite3`, exactly
    # what the Store reads through SQLAlchemy (more ids than one query takes, so split).
    from verifier.store import scan_rows

    monkeypatch.setattr(scan_rows, "MAX_LINEAGE_REFERENCES", 3)
    monkeypatch.setattr("verifier.store.sqlite_recorder.FILES_PER_LOOKUP", 2)
    monkeypatch.setattr("verifier.store.database.FILES_PER_LOOKUP", 2)
    url = _new_database(tmp_path / "verifier.db")
    with Store.open(url) as store:
        key_id = store.lineage_key().key_id
        scans = [
            _fingerprint_scan(key_id, repo="acme/base", commit="a" * 40),
            _fingerprint_scan(key_id, repo="acme/base", commit="a" * 40),  # newer, same model
            *(_fingerprint_scan(key_id, repo=f"other/m{n}", commit=None) for n in range(4)),
            _fingerprint_scan(key_id, repo="other/broken", commit=None, status=False),
            _fingerprint_scan(key_id, repo="other/wide", commit=None, hidden=16),
            _fingerprint_scan("another-store", repo="other/copied", commit=None),
        ]
        for report in scans:
            store.record_scan(report)
        store.register_base(scans[0].scan_id)
        expected = store.lineage_references(8).references
    labels = [(r.label, r.registered_base) for r in expected]
    assert labels[0] == ("acme/base@" + "a" * 40, True)
    # The cap counts only rows the store's key made: the copied row takes no place.
    assert len(labels) == 4 and not any(r.registered_base for r in expected[1:])
    assert not {"other/broken", "other/wide", "other/copied"} & {r.repo_id for r in expected}
    with open_recorder(url) as recorder:
        assert isinstance(recorder, SQLiteRecorder)
        found = recorder.lineage_references(8).references
        assert [(r.label, r.registered_base, r.publisher) for r in found] == [
            (r.label, r.registered_base, r.publisher) for r in expected
        ]
        assert [r.fingerprint.to_bytes() for r in found] == [
            r.fingerprint.to_bytes() for r in expected
        ]
        assert recorder.lineage_references(32).references == ()


def test_copied_fingerprints_take_no_place_under_the_cap(tmp_path: Path) -> None:
    # More rows another store's key made than the cap, all newer than a genuine model (a
    # declared base nobody registered): the genuine one is still compared, and the registered
    # base too, through the Store and through `sqlite3` alike.
    from verifier.store.scan_rows import MAX_LINEAGE_REFERENCES

    url = _new_database(tmp_path / "verifier.db")
    old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    with Store.open(url) as store:
        key_id = store.lineage_key().key_id
        base = _fingerprint_scan(key_id, repo="acme/base", commit="b" * 40, started=old)
        genuine = _fingerprint_scan(key_id, repo="acme/declared", commit="c" * 40, started=old)
        copied = [
            _fingerprint_scan("another-store", repo=f"copy/m{n}", commit=None, started=new)
            for n in range(MAX_LINEAGE_REFERENCES + 5)
        ]
        # Another store's row of the genuine model itself, newer: it hides nothing either.
        shadow = _fingerprint_scan(
            "another-store", repo="acme/declared", commit="c" * 40, started=new
        )
        for report in (base, genuine, *copied, shadow):
            store.record_scan(report)
        store.register_base(base.scan_id)
        found = store.lineage_references(8).references
    assert [(r.repo_id, r.registered_base) for r in found] == [
        ("acme/base", True),
        ("acme/declared", False),
    ]
    with open_recorder(url) as recorder:
        assert [r.label for r in recorder.lineage_references(8).references] == [
            r.label for r in found
        ]


def test_a_registration_follows_the_model_at_its_commit(tmp_path: Path) -> None:
    # A base registered by one scan stays registered in a later scan of the same model@commit
    # (a re-scan after an upgrade, whose old fingerprint no longer compares), whatever the
    # case of its name; a local folder (no commit) only by the scan registered.
    url = _new_database(tmp_path / "verifier.db")
    old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    with Store.open(url) as store:
        key_id = store.lineage_key().key_id
        hub_then = _fingerprint_scan(key_id, repo="Acme/Base", commit="b" * 40, started=old)
        hub_now = _fingerprint_scan(key_id, repo="acme/base", commit="b" * 40, started=new)
        other_commit = _fingerprint_scan(key_id, repo="acme/base", commit="d" * 40, started=new)
        local_then = _fingerprint_scan(key_id, repo="/models/base", commit=None, started=old)
        local_now = _fingerprint_scan(key_id, repo="/models/other", commit=None, started=new)
        for report in (hub_then, hub_now, other_commit, local_then, local_now):
            store.record_scan(report)
        store.register_base(hub_then.scan_id)
        store.register_base(local_then.scan_id)
        with store._engine.begin() as connection:  # the old scan's fingerprint no longer compares
            connection.execute(
                sa.text("UPDATE weight_fingerprints SET version = 2 WHERE scan_id = :id"),
                {"id": hub_then.scan_id},
            )
        found = {(r.label, r.registered_base) for r in store.lineage_references(8).references}
    assert found == {
        ("acme/base@" + "b" * 40, True),
        ("acme/base@" + "d" * 40, False),
        ("/models/base", True),
        ("/models/other", False),
    }
    with open_recorder(url) as recorder:
        again = recorder.lineage_references(8).references
        assert {(r.label, r.registered_base) for r in again} == found
