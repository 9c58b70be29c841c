"""The Store: records scans and decisions, and reads them back as frozen model types."""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    create_engine,
    event,
    func,
    inspect,
    literal,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, SQLAlchemyError

from verifier import __version__
from verifier.errors import NotFoundError, StoreError, UsageError
from verifier.facts import (
    parse_details,
    parse_facts_document,
    parse_lineage_document,
)
from verifier.model import (
    Approval,
    DeclaredFile,
    FileResult,
    ScanFacts,
    ScanReport,
    ScanStatus,
    ScanSummary,
    Verdict,
)
from verifier.store.fingerprint_cache import FingerprintCache
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.scan_rows import (
    FAIL_CLOSED,
    FILES_PER_LOOKUP,
    bans_changed,
    check_file_findings,
    failed_report,
    identical_files_found,
    lineage_references_chosen,
)
from verifier.store.scan_tables import (
    BAN_GENERATION,
    IDENTICAL_FILES,
    LINEAGE_BLOBS,
    LINEAGE_CANDIDATES,
    LINEAGE_KEY,
    LINEAGE_OLDER,
    bans_unchanged,
    insert_scan,
)

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.orm import Session, sessionmaker

    from verifier.bans import BanHit
    from verifier.lineage.attribution import RecordedReferences
    from verifier.lineage.fingerprint import LineageKey
    from verifier.policy.compiled import PublisherRegistry
    from verifier.store.tables import ScanRow

#: Shortest scan id prefix accepted by `Store.get_scan`.
MIN_PREFIX = 4
#: Seconds to wait for a database server before giving up.
CONNECT_TIMEOUT = 5
#: Key of the PostgreSQL advisory lock that serialises concurrent first-use upgrades.
_MIGRATION_LOCK_KEY = 0x5645524946  # "VERIF"
#: Seconds a process waits for another one's migration of the same SQLite file.
MIGRATION_LOCK_TIMEOUT = 300.0
_HEX_PREFIX = re.compile(r"[0-9a-f]+")


def _masked(url: str) -> str:
    """`url` with any password replaced by `***`, even when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Unparsable: hide everything before the host, where any credentials would be.
        at = url.rfind("@")
        if at < 0:
            return url
        scheme, separator, _ = url.partition("://")
        prefix = f"{scheme}://" if separator and len(scheme) < at else ""
        return f"{prefix}***@{url[at + 1 :]}"


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's statement dump."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0].strip() if lines else type(cause).__name__


def _migrations_dir() -> str:
    """The alembic script folder: the installed `verifier._migrations`, else the checkout's."""
    try:
        return str(importlib.resources.files("verifier._migrations"))
    except ModuleNotFoundError:
        # Running from a source checkout, where `migrations/` is not yet mapped into the package.
        return str(Path(__file__).resolve().parents[2] / "migrations")


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    """SQLite leaves foreign keys unchecked unless each connection asks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for memory and `file:` URI databases."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database).expanduser()


@contextmanager
def _file_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """An exclusive `flock` on `path` (created if missing, never removed), held in the block.

    The kernel drops the lock when its holder dies, even by SIGKILL, so a killed migration
    never blocks the next one. Without `fcntl` (Windows) SQLite's own write lock is all there is.

    Raises:
        StoreError: Another process held the lock for longer than `timeout` seconds.
        OSError: The lock file cannot be created.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"another verifier process has been migrating the database for over "
                        f"{timeout:.0f} s (lock {path}); try again when it has finished"
                    ) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def _create_engine(url: URL) -> Engine:
    """An engine for `url`: SQLite parent folder made, server connects time out quickly."""
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    if backend == "sqlite":
        if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    elif backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    engine = create_engine(url, connect_args=connect_args)
    if backend == "sqlite":
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


class Store:
    """The audit trail of scans and decisions in one SQL database (SQLite or PostgreSQL).

    Rows are only ever inserted. Every database failure surfaces as `StoreError`.
    """

    def __init__(self, url: str) -> None:
        """Create the engine for `url` without connecting.

        Args:
            url: A SQLAlchemy database URL, such as `sqlite:////var/lib/verifier.db` or
                `postgresql+psycopg://user@host/db`.

        Raises:
            StoreError: The URL is malformed, names an unknown dialect or driver, or the
                folder for a SQLite file cannot be created.
        """
        self.display_url = _masked(url)
        try:
            self._url = make_url(url)
            self._engine = _create_engine(self._url)
        except (ArgumentError, ImportError, OSError) as exc:
            raise StoreError(
                f"cannot use the database at {self.display_url}: {_reason(exc)}"
            ) from exc
        self._lineage_key: LineageKey | None = None
        self._fingerprints = FingerprintCache()

    @functools.cached_property
    def _sessions(self) -> sessionmaker[Session]:
        """ORM sessions for reads and for the records of other tables, made on first use: the
        scan path records through Core (`scan_tables.insert_scan`) and never loads the ORM."""
        from sqlalchemy.orm import sessionmaker

        return sessionmaker(self._engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str) -> Store:
        """A store for `url`, with the database created or upgraded to the latest schema.

        Args:
            url: A SQLAlchemy database URL.

        Raises:
            StoreError: The database cannot be reached, created or migrated.
        """
        store = cls(url)
        try:
            if store._stored_revision() != SCHEMA_HEAD:
                store.upgrade()
        except BaseException:
            store.close()
            raise
        return store

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def sqlite_file(self) -> Path | None:
        """The database's file when it is SQLite on a file (None: PostgreSQL, or memory)."""
        return _sqlite_file(self._url)

    @property
    def backend(self) -> str:
        """The database's kind, as SQLAlchemy names it: `sqlite` or `postgresql`."""
        return self._url.get_backend_name()

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def _stored_revision(self) -> str | None:
        """The revision in `alembic_version` by plain SQL, or None when there is none yet."""
        with self._failures("read the schema revision of"), self._engine.connect() as connection:
            try:
                row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            except DBAPIError:
                return None  # no table yet: a new database
            return None if row is None else str(row[0])

    @contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """Turn database and migration failures into one-line `StoreError`s."""
        kinds: list[type[BaseException]] = [SQLAlchemyError, ImportError, OSError]
        try:
            yield
        except Exception as exc:
            alembic_util = sys.modules.get("alembic.util")
            if alembic_util is not None:
                kinds.append(alembic_util.CommandError)
            if not isinstance(exc, tuple(kinds)):
                raise
            raise StoreError(
                f"cannot {action} the database at {self.display_url}: {_reason(exc)}"
            ) from exc

    def _alembic_config(self) -> Config:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", _migrations_dir())
        config.set_main_option("path_separator", "os")
        return config

    def head_revision(self) -> str:
        """The newest schema revision this version of verifier knows.

        Raises:
            StoreError: The migration scripts cannot be read.
        """
        from alembic.script import ScriptDirectory

        with self._failures("read the migrations for"):
            head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        if head is None:
            raise StoreError("verifier ships no database migrations; reinstall verifier")
        return head

    def upgrade(self) -> str:
        """Create the schema or bring it up to the newest revision, atomically and serially.

        One process migrates at a time (an exclusive lock on `<file>.lock` beside a SQLite
        database; a transaction-scoped advisory lock on PostgreSQL), and each migration runs in
        one transaction, DDL included, so a process killed part-way leaves the database as it
        was. A first schema half made by an older verifier (tables but no revision) is dropped
        and made again when its tables hold no row.

        Returns:
            The head revision id the database is now at.

        Raises:
            StoreError: The database cannot be reached or migrated, it is at a revision this
                version of verifier does not know (a newer verifier wrote it), or it holds
                verifier tables with rows but no schema revision.
        """
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = self.head_revision()
        config = self._alembic_config()
        with self._failures("migrate"):
            known = {
                script.revision for script in ScriptDirectory.from_config(config).walk_revisions()
            }
            with self._migration_lock():
                if self._stored_revision() == head:
                    return head  # another process migrated while this one waited
                with self._migration_transaction() as connection:
                    current = MigrationContext.configure(connection).get_current_revision()
                    self._check_known(current, known)
                    if current is None:
                        self._drop_half_made_schema(connection)
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
        return head

    def _check_known(self, revision: str | None, known: set[str]) -> None:
        """Refuse a database a newer verifier migrated: this one cannot know its schema."""
        if revision is not None and revision not in known:
            raise StoreError(
                f"the database at {self.display_url} is at schema revision {revision}, "
                f"which verifier {__version__} does not know: upgrade verifier"
            )

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """Serialise migrations of one SQLite file across processes (see `upgrade`)."""
        path = _sqlite_file(self._url)
        if path is None:
            yield  # PostgreSQL locks inside the transaction; a memory database is private
            return
        with _file_lock(path.with_name(path.name + ".lock"), timeout=MIGRATION_LOCK_TIMEOUT):
            yield

    @contextmanager
    def _migration_transaction(self) -> Iterator[Connection]:
        """One connection in one transaction for the whole migration, committed at the end."""
        with self._engine.connect() as connection:
            if connection.dialect.name != "sqlite":
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        # Two processes opening a new database at once would both create tables.
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                        )
                    yield connection
                return
            # Python's sqlite3 opens a transaction only before INSERT, UPDATE or DELETE, so
            # alembic's CREATE TABLEs were each committed at once: a migration killed part-way
            # left tables without a revision. With the driver's own handling off, BEGIN
            # IMMEDIATE makes every statement, DDL included, part of one transaction that also
            # holds SQLite's write lock from its start.
            driver = connection.connection.driver_connection
            assert driver is not None
            saved = driver.isolation_level
            driver.isolation_level = None
            try:
                with connection.begin():
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    yield connection
            finally:
                driver.isolation_level = saved

    def _drop_half_made_schema(self, connection: Connection) -> None:
        """Drop the empty verifier tables a killed first migration of an older verifier left.

        Raises:
            StoreError: One of them holds a row: that is data, not an interrupted migration.
        """
        from verifier.store.tables import Base

        present = set(inspect(connection).get_table_names())
        leftovers = [t for t in reversed(Base.metadata.sorted_tables) if t.name in present]
        holding = [
            table.name
            for table in leftovers
            if connection.execute(select(literal(1)).select_from(table).limit(1)).first()
        ]
        if holding:
            raise StoreError(
                f"the database at {self.display_url} has verifier tables with rows "
                f"({', '.join(sorted(holding))}) but no schema revision in alembic_version; "
                "restore its alembic_version row or move the database aside"
            )
        for table in leftovers:
            table.drop(connection)

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None before the first upgrade.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from alembic.runtime.migration import MigrationContext

        with self._failures("read the schema revision of"), self._engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def record_scan(self, report: ScanReport, *, bans_seen: int | None = None) -> None:
        """Record a scan with its files, findings and verdict, all or nothing.

        `report.findings` must hold every finding, file findings included; each file's
        findings are read back as the findings attributed to its path.

        Args:
            report: The finished scan.
            bans_seen: The bans' generation (`ban_generation`) read before its decision
                looked up the bans in force: nothing is recorded when a ban was made or
                lifted since (None: not checked).

        Raises:
            ValueError: A timestamp lacks its UTC offset, or a file's findings are not the
                findings of `report.findings` attributed to that file (they would not read back).
            BansChangedError: A ban was made or lifted since `bans_seen`; nothing is kept.
            StoreError: The database refused the write (such as a scan id already recorded);
                nothing of the scan is kept.
        """
        check_file_findings(report)
        self._record(report, error=None, bans_seen=bans_seen)

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
        """Record a scan that could not finish, denied so it can never read as allowed.

        The error is kept on the scan row and as a scan-level `SCAN-FAILED` finding, so
        that `get_scan` shows it.

        Args:
            scan_id: The scan's id (uuid4 hex).
            target: What was being scanned.
            started_at: ISO-8601 start time with its UTC offset.
            finished_at: ISO-8601 time the scan gave up, with its UTC offset.
            tool_version: The verifier version that ran.
            error: What went wrong, for the operator.

        Raises:
            ValueError: A timestamp lacks its UTC offset.
            StoreError: The database refused the write; nothing of the scan is kept.
        """
        failed = failed_report(
            scan_id=scan_id,
            target=target,
            started_at=started_at,
            finished_at=finished_at,
            tool_version=tool_version,
            error=error,
        )
        self._record(failed, error=error)

    def _record(
        self, report: ScanReport, *, error: str | None, bans_seen: int | None = None
    ) -> None:
        with self._failures(f"record scan {report.scan_id} in"), self._engine.begin() as connection:
            insert_scan(connection, report, error=error, decided_at=_now(), bans_seen=bans_seen)

    def record_decision(
        self, scan_id: str, verdict: Verdict, *, bans_seen: int | None = None
    ) -> None:
        """Append a new decision for a recorded scan; it becomes the current one.

        Args:
            scan_id: The scan's full id.
            verdict: The new decision.
            bans_seen: The bans' generation read before the decision looked up the bans in
                force: nothing is recorded when a ban was made or lifted since (None: not
                checked; see `record_scan`).

        Raises:
            NotFoundError: No scan has this id.
            BansChangedError: A ban was made or lifted since `bans_seen`.
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import DecisionRow, ScanRow

        action = f"record a decision for scan {scan_id} in"
        with self._failures(action), self._sessions.begin() as session:
            if session.get(ScanRow, scan_id) is None:
                raise NotFoundError(f"no recorded scan has the id {scan_id}")
            session.add(DecisionRow.from_model(scan_id, verdict, decided_at=_now()))
            session.flush()
            if bans_seen is not None and not bans_unchanged(session.connection(), bans_seen):
                raise bans_changed(scan_id)

    def record_approval(self, scan_id: str, approval: Approval) -> None:
        """Append an organisation countersignature of a recorded scan to the audit trail.

        Raises:
            NotFoundError: No scan has this id.
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import ApprovalRow, ScanRow

        action = f"record an approval of scan {scan_id} in"
        with self._failures(action), self._sessions.begin() as session:
            if session.get(ScanRow, scan_id) is None:
                raise NotFoundError(f"no recorded scan has the id {scan_id}")
            session.add(ApprovalRow.from_model(scan_id, approval))

    def list_scans(self, *, limit: int = 50) -> list[ScanSummary]:
        """The most recent scans, newest first, each with its current decision.

        Args:
            limit: How many scans at most.

        Raises:
            UsageError: `limit` is not positive.
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import DecisionRow, FindingRow, ScanFileRow, ScanRow

        if limit < 1:
            raise UsageError(f"the number of scans to list must be positive, not {limit}")
        query = (
            select(
                ScanRow,
                _latest_decision(ScanRow.id, DecisionRow.decision).scalar_subquery(),
                _count(ScanFileRow.id, ScanFileRow.scan_id),
                _count(FindingRow.id, FindingRow.scan_id),
            )
            .order_by(ScanRow.started_at.desc(), ScanRow.id.desc())
            .limit(limit)
        )
        with self._failures("list the scans in"), self._sessions() as session:
            rows = session.execute(query).all()
        return [
            scan.to_summary(decision, files=files, findings=findings)
            for scan, decision, files, findings in rows
        ]

    def get_scan(self, scan_id_or_prefix: str) -> ScanReport:
        """A recorded scan, by its full id or a unique prefix of it.

        Args:
            scan_id_or_prefix: The scan id, or at least four of its leading hex characters.

        Raises:
            NotFoundError: No scan has this id or prefix.
            UsageError: The prefix is shorter than four characters or matches several scans.
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import (
            ApprovalRow,
            DecisionRow,
            DeclaredFileRow,
            FindingRow,
            LineageEdgeRow,
            ModelDetailsRow,
            ScanFactsRow,
            ScanFileRow,
            SignatureRow,
            SourceRevisionRow,
        )

        with self._failures("read a scan from"), self._sessions() as session:
            scan = self._resolve(session, scan_id_or_prefix)
            files = session.scalars(
                select(ScanFileRow).where(ScanFileRow.scan_id == scan.id).order_by(ScanFileRow.id)
            ).all()
            finding_rows = session.scalars(
                select(FindingRow).where(FindingRow.scan_id == scan.id).order_by(FindingRow.id)
            )
            findings = tuple(row.to_model() for row in finding_rows)
            latest = session.scalars(_latest_decision(scan.id, DecisionRow)).first()
            signature = session.scalars(
                select(SignatureRow)
                .where(SignatureRow.scan_id == scan.id)
                .order_by(SignatureRow.id.desc())
                .limit(1)
            ).first()
            details = session.get(ModelDetailsRow, scan.id)
            approvals = tuple(
                row.to_model()
                for row in session.scalars(
                    select(ApprovalRow)
                    .where(ApprovalRow.scan_id == scan.id)
                    .order_by(ApprovalRow.id)
                )
            )
            revision = session.scalars(
                select(SourceRevisionRow).where(SourceRevisionRow.scan_id == scan.id)
            ).first()
            edges = tuple(
                row.to_model()
                for row in session.scalars(
                    select(LineageEdgeRow)
                    .where(LineageEdgeRow.scan_id == scan.id)
                    .order_by(LineageEdgeRow.id)
                )
            )
            declared_rows = session.scalars(
                select(DeclaredFileRow)
                .where(DeclaredFileRow.scan_id == scan.id)
                .order_by(DeclaredFileRow.id)
            ).all()
            facts_row = session.scalars(
                select(ScanFactsRow).where(ScanFactsRow.scan_id == scan.id)
            ).first()
        report = scan.to_model(
            files=tuple(
                row.to_model(tuple(f for f in findings if f.file == row.path)) for row in files
            ),
            findings=findings,
            verdict=latest.to_model() if latest is not None else FAIL_CLOSED,
            signature=signature.to_model() if signature is not None else None,
        )
        report = replace(report, approvals=approvals)
        if facts_row is not None:
            lineage = parse_lineage_document(facts_row.document.get("verified_lineage"))
            report = replace(report, verified_lineage=lineage)
        if revision is not None:
            report = replace(
                report,
                provenance=revision.to_model(edges),
                declared_files=tuple(row.to_model() for row in declared_rows),
            )
        if details is not None:
            report = replace(report, details=parse_details(details.document))
        return report

    def recorded_sha256(self, declared: DeclaredFile) -> str | None:
        """The SHA-256 some scan, by any verifier version, measured of a file it read
        completely with the declared size and git blob id (or SHA-256); None when none did.

        A file outside LFS is declared by its git blob id only: this is the name the blob
        stores keep its bytes under. Whoever takes them checks both digests again.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import ScanFileRow

        if declared.sha256 is not None:
            match = ScanFileRow.sha256 == declared.sha256
        elif declared.git_sha1 is not None:
            match = ScanFileRow.git_sha1 == declared.git_sha1
        else:
            return None
        query = (
            select(ScanFileRow.sha256)
            .where(
                match,
                ScanFileRow.size == declared.size,
                ScanFileRow.complete.is_(True),
                ScanFileRow.sha256.is_not(None),
            )
            .order_by(ScanFileRow.id.desc())
            .limit(1)
        )
        with self._failures("look up recorded digests in"), self._sessions() as session:
            found = session.scalars(query).first()
            return str(found) if found is not None else None

    def verified_file(self, declared: DeclaredFile) -> FileResult | None:
        """A file this verifier version already read completely with these declared digests.

        Used to skip downloading and hashing bytes already verified: the LFS sha256 (or, for
        files without one, the git blob id) and size must match a complete file of a complete
        scan recorded by the same verifier version. Returns None when there is none.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import FindingRow, ModelDetailsRow, ScanFileRow, ScanRow

        if declared.sha256 is not None:
            match = ScanFileRow.sha256 == declared.sha256
        elif declared.git_sha1 is not None:
            match = ScanFileRow.git_sha1 == declared.git_sha1
        else:
            return None
        query = (
            select(ScanFileRow)
            .join(ScanRow, ScanRow.id == ScanFileRow.scan_id)
            .where(
                match,
                ScanFileRow.size == declared.size,
                ScanFileRow.complete.is_(True),
                ScanRow.status == ScanStatus.COMPLETE.value,
                ScanRow.tool_version == __version__,
            )
            .order_by(ScanFileRow.id.desc())
            .limit(1)
        )
        with self._failures("look up verified files in"), self._sessions() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            findings = tuple(
                f.to_model()
                for f in session.scalars(
                    select(FindingRow)
                    .where(FindingRow.scan_id == row.scan_id, FindingRow.file_path == row.path)
                    .order_by(FindingRow.id)
                )
            )
            details = session.get(ModelDetailsRow, row.scan_id)
        result = row.to_model(findings)
        header = (details.document.get("safetensors") or {}).get(row.path) if details else None
        if header is not None:
            result = replace(result, notes={"safetensors": header})
        return result

    def get_facts(self, scan_id_or_prefix: str) -> tuple[str, ScanFacts]:
        """A recorded scan's id and facts, the input of a new policy decision.

        Scans recorded before facts were kept get theirs rebuilt from the recorded files and
        findings.

        Raises:
            NotFoundError: No scan has this id or prefix.
            UsageError: The prefix is too short or ambiguous, or the scan failed (nothing to
                decide over).
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import ScanFactsRow

        with self._failures("read a scan from"), self._sessions() as session:
            scan = self._resolve(session, scan_id_or_prefix)
            row = session.scalars(
                select(ScanFactsRow).where(ScanFactsRow.scan_id == scan.id)
            ).first()
            status = scan.status
        if status == ScanStatus.FAILED.value:
            raise UsageError(f"scan {scan.id} failed; scan again instead of deciding it")
        if row is not None:
            return scan.id, parse_facts_document(row.document)
        return scan.id, self.get_scan(scan.id).facts

    def find_scan_by_subject(self, subject: str) -> str:
        """The newest recorded scan of `subject` (`hf://namespace/name@<commit>`).

        Raises:
            NotFoundError: No recorded scan has this subject.
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.tables import ScanFactsRow, ScanRow

        query = (
            select(ScanFactsRow.scan_id)
            .join(ScanRow, ScanRow.id == ScanFactsRow.scan_id)
            .where(ScanFactsRow.subject == subject)
            .order_by(ScanRow.started_at.desc(), ScanFactsRow.id.desc())
            .limit(1)
        )
        with self._failures("find a scan in"), self._sessions() as session:
            found = session.scalars(query).first()
        if found is None:
            raise NotFoundError(f"no recorded scan of {subject}; scan it first")
        return found

    def lineage_key(self) -> LineageKey:
        """The store's lineage key: read once, made (and recorded) by the first scan that needs
        it; when two processes make one at once, the row that was written first wins.

        Raises:
            StoreError: The database cannot be reached, read or written.
        """
        from verifier.lineage.fingerprint import LineageKey
        from verifier.store.scan_tables import LINEAGE_KEYS

        if self._lineage_key is not None:
            return self._lineage_key
        # Core, not the ORM: a scan reads the key before it knows the weights fingerprint.
        query = LINEAGE_KEY
        with self._failures("read the lineage key from"), self._engine.connect() as connection:
            secret = connection.execute(query).scalar()
        if secret is None:
            made = LineageKey.generate()
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        LINEAGE_KEYS.insert().values(id=1, secret=made.secret, created_at=_now())
                    )
            except IntegrityError:
                pass  # another process recorded one first: read it below
            except SQLAlchemyError as exc:
                raise StoreError(
                    f"cannot record a lineage key in the database at {self.display_url}: "
                    f"{_reason(exc)}"
                ) from exc
            with self._failures("read the lineage key from"), self._engine.connect() as c:
                secret = c.execute(query).scalar()
            if secret is None:
                raise StoreError(f"cannot record a lineage key in {self.display_url}")
        try:
            self._lineage_key = LineageKey(bytes(secret))
        except ValueError as exc:
            raise StoreError(f"the lineage key in {self.display_url} is malformed") from exc
        return self._lineage_key

    def lineage_references(self, hidden_size: int) -> RecordedReferences:
        """Recorded fingerprints a new one of this hidden size is compared with, and the models
        recorded only with fingerprints of an older version (compared with nothing).

        Every registered base, then the newest fingerprint of each other model (by repo id
        and commit) up to `MAX_LINEAGE_REFERENCES`, from complete scans. Fingerprints of
        another version are left out (they never compare), and so are those another key made
        (a store's key never changes, but a copied row could carry another's): those take no
        place under the cap (`scan_rows.lineage_references_chosen`). Read through Core with
        the statements `sqlite_recorder` runs with `sqlite3`; a fingerprint this store decoded
        before is not read again (`fingerprint_cache`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.lineage.fingerprint import FINGERPRINT_VERSION

        key_id = self.lineage_key().key_id
        query = {"hidden_size": hidden_size, "version": FINGERPRINT_VERSION}
        with self._failures("read lineage fingerprints from"), self._engine.connect() as connection:

            def fetch(scan_ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
                blobs = {}
                for start in range(0, len(scan_ids), FILES_PER_LOOKUP):
                    batch = {"scan_ids": list(scan_ids[start : start + FILES_PER_LOOKUP])}
                    for scan_id, repo_id, blob in connection.execute(LINEAGE_BLOBS, batch):
                        blobs[scan_id] = (repo_id, blob)
                return blobs

            rows = list(connection.execute(LINEAGE_CANDIDATES, query))
            older = [tuple(row) for row in connection.execute(LINEAGE_OLDER, query)]
            return lineage_references_chosen(
                rows, fetch, key_id=key_id, older=older, cache=self._fingerprints
            )

    def identical_files(self, sha256s: Sequence[str]) -> list[tuple[str, str | None, str]]:
        """`(repo_id, commit, sha256)` of recorded Hub models holding any of these files.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        wanted = sorted(set(sha256s))
        rows: list[tuple[Any, str | None]] = []
        # Core, not the ORM: verified lineage asks this on the path of every scan of weights.
        with self._failures("look up recorded files in"), self._engine.connect() as connection:
            for start in range(0, len(wanted), FILES_PER_LOOKUP):
                batch = wanted[start : start + FILES_PER_LOOKUP]
                found = connection.execute(IDENTICAL_FILES, {"sha256s": batch})
                rows += [(source, sha256) for source, sha256 in found]
        return identical_files_found(rows)

    def ban_generation(self) -> int:
        """How many bans and lifts were ever recorded (`scan_tables.BAN_GENERATION`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._failures("read the bans in"), self._engine.connect() as connection:
            return int(connection.execute(BAN_GENERATION).scalar_one())

    def bans_reaching(
        self, facts: ScanFacts, *, publishers: PublisherRegistry
    ) -> tuple[BanHit, ...]:
        """The bans in force that reach the model of `facts` (see `verifier.store.bans`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.store.bans import BanRecords

        return BanRecords(self).bans_reaching(facts, publishers=publishers)

    def register_base(self, scan_id: str) -> None:
        """Register the fingerprint a recorded scan computed as a reference base.

        Raises:
            NotFoundError: The scan recorded no fingerprint.
            StoreError: The database cannot be reached or refused the write.
        """
        from verifier.store.tables import LineageBaseRow, WeightFingerprintRow

        with (
            self._failures(f"register scan {scan_id} as a base in"),
            self._sessions.begin() as session,
        ):
            if session.get(WeightFingerprintRow, scan_id) is None:
                raise NotFoundError(f"scan {scan_id} recorded no weight fingerprint")
            session.add(LineageBaseRow(scan_id=scan_id, registered_at=_now()))

    def lineage_bases(self) -> list[dict[str, Any]]:
        """The registered reference bases, oldest first (for `verifier lineage list`), each with
        the version of the fingerprint registered and whether a fingerprint of the current
        version of it is recorded (`compared`: the registration follows a Hub model@commit to
        later scans of it; False after an upgrade of the fingerprint until it is fingerprinted
        again, docs/lineage.md#after-an-upgrade).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.lineage.fingerprint import FINGERPRINT_VERSION
        from verifier.store.scan_tables import SCANS, WEIGHT_FINGERPRINTS, registered_base
        from verifier.store.tables import LineageBaseRow, WeightFingerprintRow

        query = (
            select(LineageBaseRow, WeightFingerprintRow)
            .join(WeightFingerprintRow, WeightFingerprintRow.scan_id == LineageBaseRow.scan_id)
            .order_by(LineageBaseRow.id)
        )
        prints = WEIGHT_FINGERPRINTS.c
        current = (
            select(prints.scan_id, prints.repo_id, prints.commit)
            .join_from(WEIGHT_FINGERPRINTS, SCANS, SCANS.c.id == prints.scan_id)
            .where(
                prints.version == FINGERPRINT_VERSION,
                SCANS.c.status == "complete",
                registered_base(prints),
            )
        )
        with self._failures("read lineage bases from"), self._sessions() as session:
            now = list(session.execute(current))
            scans = {scan_id for scan_id, _, _ in now}
            models = {(repo_id.lower(), commit) for _, repo_id, commit in now if commit}
            return [
                {
                    "scan_id": base.scan_id,
                    "repo_id": fp.repo_id,
                    "commit": fp.commit,
                    "publisher": fp.publisher,
                    "hidden_size": fp.hidden_size,
                    "registered_at": base.registered_at.isoformat(),
                    "fingerprint_version": fp.version,
                    "compared": base.scan_id in scans
                    or (fp.commit is not None and (fp.repo_id.lower(), fp.commit) in models),
                }
                for base, fp in session.execute(query)
            ]

    def _resolve(self, session: Session, wanted: str) -> ScanRow:
        from verifier.store.tables import ScanRow

        exact = session.get(ScanRow, wanted)
        if exact is not None:
            return exact
        prefix = wanted.strip().lower()
        if not _HEX_PREFIX.fullmatch(prefix):
            raise NotFoundError(f"no recorded scan has the id {wanted!r}")
        if len(prefix) < MIN_PREFIX:
            raise UsageError(
                f"scan id prefix {wanted!r} is too short: give at least {MIN_PREFIX} characters"
            )
        matches = session.scalars(
            select(ScanRow).where(ScanRow.id.startswith(prefix)).order_by(ScanRow.id).limit(6)
        ).all()
        if not matches:
            raise NotFoundError(f"no recorded scan has an id starting with {prefix}")
        if len(matches) > 1:
            shown = ", ".join(match.id for match in matches[:5]) + (", ..." * (len(matches) > 5))
            raise UsageError(f"scan id prefix {prefix} is ambiguous ({shown}): give more of it")
        return matches[0]


def _now() -> datetime:
    return datetime.now(UTC)


def _latest_decision(scan_id: Any, *columns: Any) -> Select[Any]:
    """The current (latest by id) decision of `scan_id`: a value or a correlated column."""
    from verifier.store.tables import DecisionRow

    return (
        select(*columns)
        .where(DecisionRow.scan_id == scan_id)
        .order_by(DecisionRow.id.desc())
        .limit(1)
    )


def _count(row_id: Any, scan_id: Any) -> Any:
    """How many rows of a child table belong to the scan of the enclosing query."""
    from verifier.store.tables import ScanRow

    return select(func.count(row_id)).where(scan_id == ScanRow.id).scalar_subquery()
