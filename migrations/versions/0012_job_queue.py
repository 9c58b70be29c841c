"""The job queue of the service's workers: procrastinate's schema, on PostgreSQL only."""

# Revision 0012. procrastinate's tables are its own: they are not in verifier/store/tables.py,
# and the comparison of migrations with the ORM leaves them out (`tables.is_verifier_object`).

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The newest of procrastinate's own schema migrations that its `schema.sql` includes; a test
#: keeps it equal to the installed procrastinate's, so a procrastinate that changes its
#: schema cannot be installed without a verifier migration that applies the change.
PROCRASTINATE_SCHEMA_VERSION = "03.04.00_50_post_add_retry_failed_job_procedure"


def upgrade() -> None:
    """Apply procrastinate's schema (PostgreSQL), unless the database has it already.

    SQLite has no workers: nothing to do there.
    """
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if "procrastinate_jobs" in sa.inspect(bind).get_table_names():
        return  # applied by hand, or by procrastinate's own command, before verifier's
    try:
        from procrastinate.schema import SchemaManager
    except ImportError as exc:
        raise ImportError(
            "a PostgreSQL database needs procrastinate for its job queue: "
            "pip install 'model-weights-verifier[postgres]'"
        ) from exc
    # The driver's own cursor, without parameters: the schema is many statements and holds
    # `%` and `:` that SQLAlchemy or psycopg would otherwise read as placeholders. It runs in
    # the migration's transaction, like every other statement of the upgrade.
    driver = bind.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(SchemaManager.get_schema())


def downgrade() -> None:
    """Drop procrastinate's tables, types and functions (development only)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    functions = list(
        bind.execute(
            sa.text(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "WHERE p.proname LIKE 'procrastinate%' "
                "AND p.pronamespace = current_schema()::regnamespace"
            )
        ).scalars()
    )
    for table in ("events", "periodic_defers", "jobs", "workers"):
        op.execute(f"DROP TABLE IF EXISTS procrastinate_{table} CASCADE")
    for signature in functions:
        op.execute(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
    for kind in ("job_to_defer_v1", "job_event_type", "job_status"):
        op.execute(f"DROP TYPE IF EXISTS procrastinate_{kind} CASCADE")
