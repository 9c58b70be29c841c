"""`verifier scan`'s recorder on SQLite: the rows of `scan_rows`, written with `sqlite3`.

Importing SQLAlchemy costs more CPU than scanning and recording a small file, so a scan
recorded in a SQLite database already at the newest schema goes through the standard library
with the statements SQLAlchemy compiles from `scan_tables` (kept in `sqlite_statements`: a test
fails when they differ, and another records the same scan both ways and compares every row).
The rows are the Store's (`scan_rows`), so there is still one recorder with two executors.
The recorded fingerprints verified lineage compares a new one with are read here too, with the
statements the Store runs. Everything else goes to `Store`, which loads SQLAlchemy when it is
first needed: a database to create or migrate, PostgreSQL, a URL with options, bans in force,
the first lineage key, and the files a Hub scan finds already verified.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

from verifier.errors import StoreError
from verifier.model import DeclaredFile, FileResult, ScanFacts, ScanReport
from verifier.store.fingerprint_cache import FingerprintCache
from verifier.store.revision import SCHEMA_HEAD
from verifier.store.scan_rows import (
    FILES_PER_LOOKUP,
    bans_changed,
    check_file_findings,
    failed_report,
    identical_files_found,
    lineage_references_chosen,
    scan_rows,
)
from verifier.store.sqlite_statements import (
    BAN_GENERATION,
    BAN_IN_FORCE,
    DATETIME_FORMAT,
    IDENTICAL_FILES,
    INSERTS,
    LINEAGE_BLOBS,
    LINEAGE_CANDIDATES,
    LINEAGE_KEY,
    LINEAGE_OLDER,
    SCHEMA_REVISION,
)

if TYPE_CHECKING:
    from verifier.bans import BanHit
    from verifier.lineage.attribution import RecordedReferences
    from verifier.lineage.fingerprint import LineageKey
    from verifier.policy.compiled import PublisherRegistry
    from verifier.store.database import Store
    from verifier.store.interface import ScanStore


#: A SQLite URL that names a file and nothing else: what `sqlite3` opens as SQLAlchemy would
#: (no options, no percent-escapes, no credentials, no `file:` URI, no memory database).
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<database>[^?#%@]+)")


def sqlite_path(url: str) -> str | None:
    """The file a plain SQLite URL names, as SQLAlchemy's driver opens it; None for others."""
    found = _PLAIN_SQLITE.fullmatch(url)
    if found is None:
        return None
    database = found["database"]
    if database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def open_recorder(url: str) -> ScanStore:
    """Where a scan is recorded: `sqlite3` for a plain SQLite file at head, else `Store.open`.

    Raises:
        StoreError: The database cannot be reached, created or migrated.
    """
    path = sqlite_path(url)
    if path is not None:
        recorder = SQLiteRecorder(url, path)
        if recorder.at_head():
            return recorder
    from verifier.store.database import Store

    return Store.open(url)


def _timestamp(value: datetime | None) -> str | None:
    """A timestamp as `UTCDateTime` binds it on SQLite: in UTC, stored without its offset."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given where a UTC instant is needed")
    moment = value.astimezone(UTC)
    return DATETIME_FORMAT % {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
        "microsecond": moment.microsecond,
    }


def _bound(value: Any, kind: str) -> Any:
    """`value` as SQLAlchemy's SQLite dialect binds a column of this kind."""
    if kind == "json":
        return json.dumps(value)  # JSON's default serialiser; None is JSON's null
    if kind == "timestamp":
        return _timestamp(value)
    return value  # as given: sqlite3 binds a bool as the 0 or 1 SQLAlchemy's Boolean binds


def _parameters(
    row: Mapping[str, Any], columns: Sequence[str], kinds: Sequence[str]
) -> tuple[Any, ...]:
    if len(row) != len(columns):
        raise ValueError(f"row has columns {sorted(row)}, the statement {list(columns)}")
    return tuple(_bound(row[column], kind) for column, kind in zip(columns, kinds, strict=True))


def write_rows(
    connection: sqlite3.Connection, report: ScanReport, *, error: str | None, decided_at: datetime
) -> None:
    """Insert the rows of a scan through `connection` (the caller commits): `insert_scan`'s
    work, done by `sqlite3` with the statements SQLAlchemy compiles for the same rows.

    Raises:
        ValueError: A timestamp lacks its UTC offset.
        sqlite3.Error: The database refused a row.
    """
    for table, rows in scan_rows(report, error=error, decided_at=decided_at):
        statement, columns, kinds = INSERTS[table]
        connection.executemany(statement, [_parameters(row, columns, kinds) for row in rows])


class SQLiteRecorder:
    """Records scans in a SQLite file already at the newest schema, without SQLAlchemy.

    Rows are only ever inserted; every database failure surfaces as `StoreError`, worded as
    `Store` words it. Reads beyond the scan's own (bans in force, lineage) go to a `Store` on
    the same file, made on first use.
    """

    def __init__(self, url: str, path: str) -> None:
        """Record in the SQLite file `path`, which `url` names (see `sqlite_path`)."""
        self.display_url = url  # a plain SQLite URL holds no credentials to mask
        self._url = url
        self._path = path
        self._store: Store | None = None
        self._lineage_key: LineageKey | None = None
        self._fingerprints = FingerprintCache()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the Store, if one was needed."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def _connect(self) -> sqlite3.Connection:
        # As the Store's engine connects: the driver's defaults, with foreign keys checked.
        connection = sqlite3.connect(self._path)
        connection.execute("PRAGMA foreign_keys=ON")
        return connection

    @contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        """Turn database failures into one-line `StoreError`s, as `Store` words them."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            lines = str(exc).strip().splitlines()
            reason = lines[0].strip() if lines else type(exc).__name__
            raise StoreError(
                f"cannot {action} the database at {self.display_url}: {reason}"
            ) from exc

    def at_head(self) -> bool:
        """Whether the file holds verifier's newest schema (False when it cannot be read)."""
        try:
            with closing(self._connect()) as connection:
                row = connection.execute(SCHEMA_REVISION).fetchone()
        except (sqlite3.Error, OSError):
            return False  # missing, unreadable or new: `Store.open` says why, or creates it
        return row is not None and row[0] == SCHEMA_HEAD

    def _write(
        self, report: ScanReport, *, error: str | None, bans_seen: int | None = None
    ) -> None:
        decided_at = datetime.now(UTC)
        with (
            self._failures(f"record scan {report.scan_id} in"),
            closing(self._connect()) as connection,
            connection,  # one transaction: committed, or rolled back on any error
        ):
            write_rows(connection, report, error=error, decided_at=decided_at)
            # After the first write the transaction holds the file's write lock: no ban can
            # be made or lifted until it ends (as `scan_tables.bans_unchanged`).
            if bans_seen is not None:
                (generation,) = connection.execute(BAN_GENERATION).fetchone() or (None,)
                if generation != bans_seen:
                    raise bans_changed(report.scan_id)

    def ban_generation(self) -> int:
        """How many bans and lifts were ever recorded (as `Store.ban_generation`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._failures("read the bans in"), closing(self._connect()) as connection:
            (generation,) = connection.execute(BAN_GENERATION).fetchone()
        return int(generation)

    def record_scan(self, report: ScanReport, *, bans_seen: int | None = None) -> None:
        """Record a scan with its files, findings and verdict, all or nothing (as `Store`,
        with `bans_seen` as `Store.record_scan` checks it).

        Raises:
            ValueError: A timestamp lacks its UTC offset, or a file's findings are not the
                findings of `report.findings` attributed to that file.
            BansChangedError: A ban was made or lifted since `bans_seen`; nothing is kept.
            StoreError: The database refused the write; nothing of the scan is kept.
        """
        check_file_findings(report)
        self._write(report, error=None, bans_seen=bans_seen)

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
        """Record a scan that could not finish, denied (as `Store.record_failed_scan`).

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
        self._write(failed, error=error)

    def _full(self) -> Store:
        if self._store is None:
            from verifier.store.database import Store

            self._store = Store(self._url)
        return self._store

    def bans_reaching(
        self, facts: ScanFacts, *, publishers: PublisherRegistry
    ) -> tuple[BanHit, ...]:
        """The bans in force that reach the model of `facts`: none without a ban in force,
        else `Store.bans_reaching`.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._failures("read the bans in"), closing(self._connect()) as connection:
            if connection.execute(BAN_IN_FORCE).fetchone() is None:
                return ()
        return self._full().bans_reaching(facts, publishers=publishers)

    def lineage_key(self) -> LineageKey:
        """The store's lineage key, as `Store.lineage_key` reads it; the first scan that needs
        one has `Store.lineage_key` make and record it.

        Raises:
            StoreError: The database cannot be reached, read or written.
        """
        if self._lineage_key is None:
            with self._failures("read the lineage key from"), closing(self._connect()) as db:
                row = db.execute(LINEAGE_KEY).fetchone()
            if row is None:
                self._lineage_key = self._full().lineage_key()
            else:
                from verifier.lineage.fingerprint import LineageKey

                try:
                    self._lineage_key = LineageKey(bytes(row[0]))
                except ValueError as exc:
                    raise StoreError(f"the lineage key in {self.display_url} is malformed") from exc
        return self._lineage_key

    def lineage_references(self, hidden_size: int) -> RecordedReferences:
        """Recorded fingerprints a new one of this hidden size is compared with, as
        `Store.lineage_references` reads them (every scan of weights asks).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        from verifier.lineage.fingerprint import FINGERPRINT_VERSION

        key_id = self.lineage_key().key_id
        with self._failures("read lineage fingerprints from"), closing(self._connect()) as db:

            def fetch(scan_ids: Sequence[str]) -> dict[str, tuple[str, bytes]]:
                blobs = {}
                for start in range(0, len(scan_ids), FILES_PER_LOOKUP):
                    batch = list(scan_ids[start : start + FILES_PER_LOOKUP])
                    places = ", ".join("?" * len(batch))
                    statement = LINEAGE_BLOBS.replace("__[POSTCOMPILE_scan_ids]", places)
                    for scan_id, repo_id, blob in db.execute(statement, batch):
                        blobs[scan_id] = (repo_id, blob)
                return blobs

            bound = (hidden_size, FINGERPRINT_VERSION)
            rows = db.execute(LINEAGE_CANDIDATES, bound).fetchall()
            older = db.execute(LINEAGE_OLDER, bound).fetchall()
            return lineage_references_chosen(
                rows, fetch, key_id=key_id, older=older, cache=self._fingerprints
            )

    def identical_files(self, sha256s: Sequence[str]) -> Sequence[tuple[str, str | None, str]]:
        """`(repo_id, commit, sha256)` of recorded Hub models holding any of these files (as
        `Store.identical_files`).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        wanted = sorted(set(sha256s))
        rows: list[tuple[Any, str | None]] = []
        with self._failures("look up recorded files in"), closing(self._connect()) as db:
            for start in range(0, len(wanted), FILES_PER_LOOKUP):
                batch = wanted[start : start + FILES_PER_LOOKUP]
                places = ", ".join("?" * len(batch))
                statement = IDENTICAL_FILES.replace("__[POSTCOMPILE_sha256s]", places)
                for source, sha256 in db.execute(statement, batch):
                    # JSON's column as SQLAlchemy reads it back.
                    rows.append((None if source is None else json.loads(source), sha256))
        return identical_files_found(rows)

    def verified_file(self, declared: DeclaredFile) -> FileResult | None:
        """`Store.verified_file` (a Hub scan's files already verified need not arrive again)."""
        return self._full().verified_file(declared)

    def recorded_sha256(self, declared: DeclaredFile) -> str | None:
        """`Store.recorded_sha256`."""
        return self._full().recorded_sha256(declared)
