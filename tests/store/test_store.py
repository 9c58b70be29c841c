"""Tests of the Store: round trips, failed scans, lookups, re-decisions, migrations, failures."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from verifier.errors import NotFoundError, StoreError, UsageError
from verifier.model import (
    Decision,
    FileFormat,
    FileResult,
    Finding,
    RuleOutcome,
    ScanReport,
    ScanStatus,
    Severity,
    Verdict,
)
from verifier.store import Store
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.tables import Base, is_verifier_object

TABLES = {"scans", "scan_files", "findings", "decisions", "scan_facts", "signatures"}
START = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def make_report(
    scan_id: str | None = None,
    *,
    started: datetime = START,
    files: tuple[FileResult, ...] | None = None,
) -> ScanReport:
    """A complete report with two files, file findings and a scan-level finding."""
    scan_id = scan_id or uuid.uuid4().hex
    pickle_findings = (
        Finding(
            code="PICKLE-GLOBAL",
            severity=Severity.CRITICAL,
            message="imports os.system",
            file="model.bin",
            member="archive/data.pkl",
            offset=2**40,
            evidence="GLOBAL 'os system'",
        ),
        Finding(
            code="PICKLE-GLOBAL",
            severity=Severity.LOW,
            message="imports collections.OrderedDict",
            file="model.bin",
            member="archive/data.pkl",
            offset=12,
        ),
    )
    scan_finding = Finding(code="UNSIGNED", severity=Severity.MEDIUM, message="no signature")
    if files is None:
        files = (
            FileResult(
                path="model.bin",
                size=5 * 2**32,
                sha256="a" * 64,
                git_sha1="b" * 40,
                format=FileFormat.PYTORCH_ZIP,
                findings=pickle_findings,
            ),
            FileResult(
                path="sub/config.json",
                size=0,
                sha256=None,
                git_sha1=None,
                format=FileFormat.JSON,
                complete=False,
            ),
        )
        # Scan-level and file findings interleave, as a pipeline may record them.
        findings: tuple[Finding, ...] = (pickle_findings[0], scan_finding, pickle_findings[1])
    else:
        findings = (scan_finding, *(f for result in files for f in result.findings))
    return ScanReport(
        scan_id=scan_id,
        target="/models/tiny",
        started_at=started.isoformat(),
        finished_at=(started + timedelta(seconds=3)).isoformat(),
        tool_version="0.1.0",
        status=ScanStatus.INCOMPLETE,
        files=files,
        findings=findings,
        verdict=Verdict(
            decision=Decision.DENY,
            policy_name="default",
            policy_digest="sha256:" + "c" * 64,
            mode="enforce",
            reasons=(
                RuleOutcome(
                    rule_id="no-code-exec",
                    effect="deny",
                    severity=Severity.CRITICAL,
                    message="pickle imports os.system",
                    evidence=("model.bin: os.system", "model.bin: offset 1099511627776"),
                ),
                RuleOutcome(
                    rule_id="signed", effect="warn", severity=Severity.MEDIUM, message="unsigned"
                ),
            ),
        ),
        source={"type": "local", "path": "/models/tiny"},
    )


ALLOW = Verdict(
    decision=Decision.ALLOW, policy_name="lenient", policy_digest="sha256:" + "d" * 64, mode="warn"
)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        yield opened


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_round_trip_is_exact(store: Store) -> None:
    report = make_report()
    store.record_scan(report)
    assert store.get_scan(report.scan_id) == report


def test_round_trip_normalises_timestamps_to_utc(store: Store) -> None:
    report = dataclasses.replace(
        make_report(), started_at="2024-05-01T14:00:00+02:00", finished_at="2024-05-01T12:00:01Z"
    )
    store.record_scan(report)
    read = store.get_scan(report.scan_id)
    assert (read.started_at, read.finished_at) == (
        "2024-05-01T12:00:00+00:00",
        "2024-05-01T12:00:01+00:00",
    )


def test_naive_timestamp_is_refused(store: Store) -> None:
    report = dataclasses.replace(make_report(), started_at="2024-05-01T12:00:00")
    with pytest.raises(ValueError, match="no UTC offset"):
        store.record_scan(report)


def test_file_findings_missing_from_report_are_refused(store: Store) -> None:
    report = make_report()
    with pytest.raises(ValueError, match=r"model\.bin"):
        store.record_scan(dataclasses.replace(report, findings=report.findings[1:]))


def test_list_scans_newest_first_with_counts_and_current_decision(store: Store) -> None:
    older = make_report(started=START)
    newer = make_report(started=START + timedelta(hours=1))
    store.record_scan(older)
    store.record_scan(newer)
    store.record_decision(older.scan_id, ALLOW)
    summaries = store.list_scans()
    assert [s.scan_id for s in summaries] == [newer.scan_id, older.scan_id]
    assert summaries[0].decision is Decision.DENY
    assert summaries[1].decision is Decision.ALLOW
    assert (summaries[1].file_count, summaries[1].finding_count) == (2, 3)
    assert summaries[1].started_at == older.started_at
    assert summaries[1].status is ScanStatus.INCOMPLETE
    assert [s.scan_id for s in store.list_scans(limit=1)] == [newer.scan_id]
    with pytest.raises(UsageError):
        store.list_scans(limit=0)


def test_failed_scan_is_denied(store: Store) -> None:
    scan_id = uuid.uuid4().hex
    store.record_failed_scan(
        scan_id=scan_id,
        target="org/model",
        started_at=START.isoformat(),
        finished_at=START.isoformat(),
        tool_version="0.1.0",
        error="connection reset while fetching model.bin",
    )
    report = store.get_scan(scan_id)
    assert report.status is ScanStatus.FAILED
    assert report.verdict == Verdict(
        decision=Decision.DENY, policy_name="(none)", policy_digest="", mode="enforce"
    )
    assert report.files == ()
    assert [(f.code, f.message) for f in report.findings] == [
        ("SCAN-FAILED", "connection reset while fetching model.bin")
    ]
    (summary,) = store.list_scans()
    assert (summary.status, summary.decision) == (ScanStatus.FAILED, Decision.DENY)


def test_lookup_by_prefix(store: Store) -> None:
    report = make_report("abcd" + "0" * 28)
    store.record_scan(report)
    assert store.get_scan("abcd") == report
    assert store.get_scan("ABCD00").scan_id == report.scan_id


def test_ambiguous_prefix(store: Store) -> None:
    store.record_scan(make_report("abcd" + "1" * 28))
    store.record_scan(make_report("abcd" + "2" * 28))
    with pytest.raises(UsageError, match="ambiguous") as caught:
        store.get_scan("abcd")
    assert not isinstance(caught.value, NotFoundError)
    assert store.get_scan("abcd1").scan_id == "abcd" + "1" * 28


def test_unknown_and_short_ids(store: Store) -> None:
    store.record_scan(make_report("abcd" + "0" * 28))
    with pytest.raises(NotFoundError):
        store.get_scan("ffff")
    with pytest.raises(NotFoundError):
        store.get_scan("not-a-scan")
    with pytest.raises(UsageError, match="too short"):
        store.get_scan("abc")
    with pytest.raises(NotFoundError):
        store.record_decision("f" * 32, ALLOW)


def test_redecision_appends_and_becomes_current(store: Store, database_url: str) -> None:
    report = make_report()
    store.record_scan(report)
    store.record_decision(report.scan_id, ALLOW)
    assert store.get_scan(report.scan_id).verdict == ALLOW
    store.record_decision(report.scan_id, report.verdict)
    assert store.get_scan(report.scan_id) == report
    assert count_rows(database_url, "decisions") == 3


def test_duplicate_scan_id_rolls_back(store: Store, database_url: str) -> None:
    report = make_report()
    store.record_scan(report)
    extra = FileResult(path="extra.bin", size=1, sha256=None, git_sha1=None, format=FileFormat.ZIP)
    with pytest.raises(StoreError, match=report.scan_id):
        store.record_scan(dataclasses.replace(report, files=(*report.files, extra)))
    assert count_rows(database_url, "scans") == 1
    assert count_rows(database_url, "scan_files") == 2
    assert count_rows(database_url, "findings") == 3
    assert count_rows(database_url, "decisions") == 1
    assert store.get_scan(report.scan_id) == report


def test_failure_after_partial_insert_leaves_nothing(store: Store, database_url: str) -> None:
    same = FileResult(path="a.bin", size=1, sha256=None, git_sha1=None, format=FileFormat.ZIP)
    report = make_report(files=(same, same))
    with pytest.raises(StoreError):
        store.record_scan(report)
    for table in TABLES:
        assert count_rows(database_url, table) == 0, table
    with pytest.raises(NotFoundError):
        store.get_scan(report.scan_id)


def test_fresh_database_upgrades_to_head(database_url: str) -> None:
    with Store(database_url) as store:
        assert store.current_revision() is None
        head = store.upgrade()
        assert head == store.head_revision() == SCHEMA_HEAD
        assert store.current_revision() == head
        assert store.upgrade() == head
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            assert TABLES | {"alembic_version"} <= set(inspector.get_table_names())
            if connection.dialect.name == "postgresql":
                schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one()
                assert schema.startswith("t_")
                assert set(inspector.get_table_names(schema=schema)) >= {"alembic_version"}
            # The hand-written migration and the ORM tables describe the same schema.
            assert (
                compare_metadata(
                    MigrationContext.configure(
                        connection, opts={"include_name": is_verifier_object}
                    ),
                    Base.metadata,
                )
                == []
            )
    finally:
        engine.dispose()


def test_server_connections_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that does not answer fails the command after CONNECT_TIMEOUT, not never."""
    from sqlalchemy.engine import make_url

    from verifier.store import database

    seen: list[dict[str, Any]] = []

    def capture(url: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["connect_args"])
        raise RuntimeError("captured")

    monkeypatch.setattr(database, "create_engine", capture)
    for url in (
        "postgresql+psycopg://u@db.invalid/x",
        "postgresql+psycopg://u@h/x?connect_timeout=3",
    ):
        with pytest.raises(RuntimeError, match="captured"):
            database._create_engine(make_url(url))
    assert seen == [{"connect_timeout": database.CONNECT_TIMEOUT}, {}]
    assert 0 < database.CONNECT_TIMEOUT <= 10


def test_unreachable_postgres_fails_with_one_masked_line() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("postgresql+psycopg://nobody:hunter2@127.0.0.1:1/none")
    message = caught.value.diagnostics()
    assert "127.0.0.1:1/none" in message
    assert "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "url",
    [
        "nosuchdialect://user:hunter2@host/db",
        "postgresql+nosuchdriver://user:hunter2@host/db",
        "not a url with :hunter2@ in it",
    ],
)
def test_bad_urls_raise_store_error(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    assert "hunter2" not in str(caught.value)


def test_unwritable_sqlite_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'verifier.db'}")


def test_database_from_a_newer_verifier_is_refused(database_url: str) -> None:
    Store.open(database_url).close()
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match=r"9999.*upgrade verifier"):
        Store.open(database_url)
