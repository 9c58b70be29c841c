"""The tables a scan writes, as SQLAlchemy Core, and their Core executor of `scan_rows`.

A scan is recorded through these `Table`s with Core inserts of the rows `scan_rows` builds:
the service's jobs never import SQLAlchemy's ORM, whose import, declarative classes and mapper
configuration cost more than recording itself. The ORM classes of `tables.py` map these same
`Table`s (`__table__`) for every read; `tables.py` declares the tables nobody writes on the
scan path. Both share `METADATA`, which the migrations are checked against. `verifier scan`
on SQLite writes the same rows with `sqlite3` (`sqlite_recorder`), with statements compiled
from these tables into `sqlite_statements` (a test keeps them equal).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from verifier.model import ScanReport
from verifier.store.scan_rows import bans_changed, scan_rows

#: Constraint names are spelled out so the hand-written migrations and these tables agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Every table of verifier's schema (these and the declarative ones of `tables.py`).
METADATA = MetaData(naming_convention=NAMING_CONVENTION)

#: Row ids: 64-bit on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp kept in UTC on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and bind the value in UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is needed")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read the value back as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


SCANS = Table(
    "scans",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("target", Text, nullable=False),
    Column("source_type", String(64), nullable=False),
    Column("source", JSON, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("tool_version", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Index("ix_scans_started_at", "started_at"),
)

SCAN_FILES = Table(
    "scan_files",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("git_sha1", String(40)),
    Column("format", String(32), nullable=False),
    Column("complete", Boolean, nullable=False),
    UniqueConstraint("scan_id", "path", name="uq_scan_files_scan_id_path"),
    Index("ix_scan_files_sha256", "sha256"),
)

FINDINGS = Table(
    "findings",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("file_path", Text),
    Column("code", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("member", Text),
    Column("byte_offset", BigInteger),
    Column("evidence", Text),
    Index("ix_findings_code", "code"),
    Index("ix_findings_scan_id", "scan_id"),
)

DECISIONS = Table(
    "decisions",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("decided_at", UTCDateTime, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("policy_name", Text, nullable=False),
    Column("policy_digest", Text, nullable=False),
    Column("mode", String(32), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("environment", String(64)),
    Column("waivers", JSON),
    Index("ix_decisions_scan_id", "scan_id"),
)

SCAN_FACTS = Table(
    "scan_facts",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("subject", Text),
    Column("document", JSON, nullable=False),
    UniqueConstraint("scan_id", name="uq_scan_facts_scan_id"),
    Index("ix_scan_facts_subject", "subject"),
)

SIGNATURES = Table(
    "signatures",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("method", String(16)),
    Column("signer", Text),
    Column("issuer", Text),
    Column("key_fingerprint", String(128)),
    Column("certificate_subject", Text),
    Column("key_usage", JSON, nullable=False),
    Column("path", Text),
    Column("bundle_sha256", String(64)),
    Column("predicate_type", Text),
    Column("digest_algorithm", String(64)),
    Column("reason", Text, nullable=False),
    Column("diff", JSON, nullable=False),
    Column("outside", JSON, nullable=False),
    Index("ix_signatures_scan_id", "scan_id"),
    Index("ix_signatures_signer", "signer"),
)

MODEL_DETAILS = Table(
    "model_details",
    METADATA,
    Column("scan_id", String(32), ForeignKey("scans.id"), primary_key=True),
    Column("document", JSON, nullable=False),
)

SOURCE_REVISIONS = Table(
    "source_revisions",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("repo_id", Text, nullable=False),
    Column("namespace", Text, nullable=False),
    Column("commit", String(64), nullable=False),
    Column("revision_requested", Text, nullable=False),
    Column("endpoint", Text, nullable=False),
    Column("created_at", String(64)),
    Column("last_modified", String(64)),
    Column("gated", String(32)),
    Column("private", Boolean),
    Column("license", Text),
    Column("license_name", Text),
    Column("license_link", Text),
    Column("library_name", Text),
    Column("pipeline_tag", Text),
    Column("base_model_relation", Text),
    Column("hub_security_status", Text),
    #: tags, datasets, languages, base_models, lineage roots/truncated/cycle
    Column("metadata_lists", JSON, nullable=False),
    UniqueConstraint("scan_id", name="uq_source_revisions_scan_id"),
    Index("ix_source_revisions_repo_id_commit", "repo_id", "commit"),
)

DECLARED_FILES = Table(
    "declared_files",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64)),
    Column("git_sha1", String(40)),
    Column("lfs", Boolean, nullable=False),
    UniqueConstraint("scan_id", "path", name="uq_declared_files_scan_id_path"),
    Index("ix_declared_files_sha256", "sha256"),
)

LINEAGE_EDGES = Table(
    "lineage_edges",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("scans.id"), nullable=False),
    Column("child", Text, nullable=False),
    Column("child_commit", String(64), nullable=False),
    Column("parent", Text, nullable=False),
    Column("parent_commit", String(64)),
    Column("relation", String(32), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("error", Text),
    Column("parent_license", Text),
    Index("ix_lineage_edges_parent", "parent"),
    Index("ix_lineage_edges_scan_id", "scan_id"),
)

WEIGHT_FINGERPRINTS = Table(
    "weight_fingerprints",
    METADATA,
    Column("scan_id", String(32), ForeignKey("scans.id"), primary_key=True),
    #: `namespace/name` for a Hub model, the cache repo or the target for a local one.
    Column("repo_id", Text, nullable=False),
    Column("commit", String(64)),
    Column("publisher", Text),
    Column("hidden_size", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Index("ix_weight_fingerprints_hidden_size", "hidden_size"),
)

LINEAGE_BASES = Table(
    "lineage_bases",
    METADATA,
    #: A fingerprint the organisation registered as a reference base (append-only). Here, not
    #: in `tables.py`: every scan of weights reads which references are bases, without the ORM.
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("scan_id", String(32), ForeignKey("weight_fingerprints.scan_id"), nullable=False),
    Column("registered_at", UTCDateTime, nullable=False),
    Index("ix_lineage_bases_scan_id", "scan_id"),
)

LINEAGE_KEYS = Table(
    "lineage_keys",
    METADATA,
    #: One row (id 1): the store's secret that chooses fingerprints' anchors and matrices.
    #: Here, not in `tables.py`: a scan reads it before fingerprinting, without the ORM.
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

BANS = Table(
    "bans",
    METADATA,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    #: `ban` or `lift` (a lift names its ban in `lifts`): append-only, never updated.
    Column("action", String(8), nullable=False),
    #: `model`, `publisher`, `jurisdiction` or `blob` (a lift repeats its ban's).
    Column("kind", String(16), nullable=False),
    Column("value", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("lifts", ROW_ID, ForeignKey("bans.id")),
    Index("ix_bans_lifts", "lifts"),
)


_LIFT = BANS.alias("lift")
#: A row when any ban is in force (not lifted): without one, no ban can reach a scan, and the
#: estate is not read. See `verifier.store.bans.BanRecords.bans_reaching`.
BAN_IN_FORCE = (
    select(BANS.c.id)
    .where(BANS.c.action == "ban", ~exists().where(_LIFT.c.lifts == BANS.c.id))
    .limit(1)
)
#: The bans' generation: how many bans and lifts were ever recorded. Rows of `bans` are only
#: ever added, so the number moves with every ban made or lifted (see `bans_unchanged`).
BAN_GENERATION = select(func.count()).select_from(BANS)
#: Name of the PostgreSQL advisory lock that orders recording a decision (shared: records do
#: not wait for each other) against making or lifting a ban (exclusive); its key is hashed with
#: the schema, so that deployments in schemas of one database do not wait for each other. On
#: SQLite the database's one writer at a time does the same.
BANS_LOCK_NAME = "verifier.bans"


def lock_bans(connection: Connection, *, exclusive: bool) -> None:
    """Hold the bans' lock until `connection`'s transaction ends (PostgreSQL; on SQLite the
    transaction's first write holds the database's write lock, which serves the same end).

    A ban is made or lifted holding it exclusively; a scan's decision is recorded holding it
    shared. So either the ban's re-decision (which runs after its transaction commits) reads
    the recorded scan, or the recording transaction reads the ban (`bans_unchanged`).
    """
    if connection.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        key = func.hashtextextended(func.current_schema().concat(f"/{BANS_LOCK_NAME}"), 0)
        connection.execute(select(getattr(func, function)(key)))


def bans_unchanged(connection: Connection, seen: int) -> bool:
    """Whether the bans' generation is still `seen`, read in the transaction that records a
    scan, after its first write and holding the bans' lock (`lock_bans`): no ban can be made
    or lifted between this read and the commit.
    """
    lock_bans(connection, exclusive=False)
    return connection.execute(BAN_GENERATION).scalar_one() == seen


#: The scans of Hub models that recorded any of the files `sha256s` (at most
#: `scan_rows.FILES_PER_LOOKUP`) completely: `(source, sha256)` rows for `identical_files_found`.
IDENTICAL_FILES = (
    select(SCANS.c.source, SCAN_FILES.c.sha256)
    .join_from(SCAN_FILES, SCANS, SCANS.c.id == SCAN_FILES.c.scan_id)
    .where(
        SCAN_FILES.c.sha256.in_(bindparam("sha256s", expanding=True)),
        SCAN_FILES.c.complete.is_(True),
        SCANS.c.source_type == literal_column("'huggingface'"),
    )
)
#: The store's lineage key, once one was made (`Store.lineage_key`).
LINEAGE_KEY = select(LINEAGE_KEYS.c.secret).where(LINEAGE_KEYS.c.id == 1)

_PRINTS = WEIGHT_FINGERPRINTS.c
_BASE_PRINTS = WEIGHT_FINGERPRINTS.alias("base_prints")


def registered_base(prints: Any) -> ColumnElement[bool]:
    """Whether the fingerprint row `prints` (the columns of `weight_fingerprints` or of an
    alias of it) is a registered base: its scan was registered, or a scan of the same Hub
    model@commit was (`lineage_bases` keeps the scan registered; the registration follows the
    pinned model@commit to every later scan of it, such as a re-scan after an upgrade, whose
    bytes the commit pins). A model without a commit (a local folder) is registered by its
    scan only: the bytes under a path can change."""
    # Uncorrelated (the registered models are read once, not once per row: a correlated
    # EXISTS made SQLite read every fingerprint row for each candidate, 15 times slower).
    registered_models = select(func.lower(_BASE_PRINTS.c.repo_id), _BASE_PRINTS.c.commit).join_from(
        LINEAGE_BASES, _BASE_PRINTS, LINEAGE_BASES.c.scan_id == _BASE_PRINTS.c.scan_id
    )
    return or_(
        prints.scan_id.in_(select(LINEAGE_BASES.c.scan_id)),
        and_(
            prints.commit.is_not(None),
            tuple_(func.lower(prints.repo_id), prints.commit).in_(registered_models),
        ),
    )


#: Recorded fingerprints of one hidden size and fingerprint version from complete scans, newest
#: first, each with whether it is a registered base (`registered_base`): rows for
#: `scan_rows.lineage_references_chosen`.
LINEAGE_CANDIDATES = (
    select(
        _PRINTS.scan_id,
        _PRINTS.repo_id,
        _PRINTS.commit,
        _PRINTS.publisher,
        registered_base(_PRINTS).label("registered"),
    )
    .join_from(WEIGHT_FINGERPRINTS, SCANS, SCANS.c.id == _PRINTS.scan_id)
    .where(
        _PRINTS.hidden_size == bindparam("hidden_size"),
        _PRINTS.version == bindparam("version"),
        SCANS.c.status == literal_column("'complete'"),
    )
    .order_by(SCANS.c.started_at.desc(), SCANS.c.id)
)
#: Recorded fingerprints of one hidden size from complete scans made by an OLDER fingerprint
#: version than `version` (never compared): `(repo id, commit, version, registered)` rows, so a
#: scan can say which models it could not compare with (`scan_rows.lineage_references_chosen`).
LINEAGE_OLDER = (
    select(
        _PRINTS.repo_id,
        _PRINTS.commit,
        _PRINTS.version,
        registered_base(_PRINTS).label("registered"),
    )
    .join_from(WEIGHT_FINGERPRINTS, SCANS, SCANS.c.id == _PRINTS.scan_id)
    .where(
        _PRINTS.hidden_size == bindparam("hidden_size"),
        _PRINTS.version < bindparam("version"),
        SCANS.c.status == literal_column("'complete'"),
    )
)
#: The fingerprints of the chosen scans (at most `scan_rows.FILES_PER_LOOKUP` ids a query).
LINEAGE_BLOBS = select(_PRINTS.scan_id, _PRINTS.repo_id, _PRINTS.fingerprint).where(
    _PRINTS.scan_id.in_(bindparam("scan_ids", expanding=True))
)


def insert_scan(
    connection: Connection,
    report: ScanReport,
    *,
    error: str | None,
    decided_at: datetime,
    bans_seen: int | None = None,
) -> None:
    """Insert the rows of a scan in `connection`'s transaction (the caller commits).

    The rows are `scan_rows.scan_rows`, which `sqlite_recorder` writes too: `Store.record_scan`,
    `Store.record_failed_scan` and the service's job recorder come here, a scan recorded in
    SQLite by `verifier scan` goes there.

    With `bans_seen` (the bans' generation read before the scan looked up the bans in force),
    the decision is recorded only if no ban was made or lifted since (`bans_unchanged`).

    Raises:
        BansChangedError: A ban was made or lifted since `bans_seen` (the caller's transaction
            must roll back: decide again with the bans in force, then record).
    """
    for table, values in scan_rows(report, error=error, decided_at=decided_at):
        connection.execute(insert(METADATA.tables[table]), values)
    if bans_seen is not None and not bans_unchanged(connection, bans_seen):
        raise bans_changed(report.scan_id)
