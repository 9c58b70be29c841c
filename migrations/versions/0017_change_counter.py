"""The change counter: one number every change of what the gate reads moves (by triggers)."""

# Revision 0017. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py; tests/store/test_change_counter.py checks the triggers.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of `verifier.store.tables.GATE_TABLES` (migrations never change): a table added
# to that list later gets its triggers in a migration of its own.
_TABLES = (
    "scans",
    "scan_facts",
    "decisions",
    "signatures",
    "approvals",
    "bans",
    "ban_reach",
    "waivers",
    "waiver_revocations",
    "api_tokens",
)
_OPERATIONS = ("insert", "update", "delete")
_BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"
_FUNCTION = "verifier_count_change"


def upgrade() -> None:
    """Create the counter's one row and a trigger on each table that moves it.

    On PostgreSQL the row triggers are deferred to commit (constraint triggers), so a writer
    holds the counter's row lock only while it commits, not for its whole transaction; a
    TRUNCATE moves it too. SQLite has a trigger per table and operation (it has no
    statement-level ones); its writers are serial anyway.
    """
    op.create_table(
        "change_counter",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_change_counter"),
    )
    op.execute("INSERT INTO change_counter (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {_BUMP}; RETURN NULL; END $$"
        )
        for table in _TABLES:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER change_counter_{table} "
                f"AFTER INSERT OR UPDATE OR DELETE ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {_FUNCTION}()"
            )
            op.execute(
                f"CREATE TRIGGER change_counter_{table}_truncate AFTER TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
            )
        return
    for table in _TABLES:
        for operation in _OPERATIONS:
            op.execute(
                f"CREATE TRIGGER change_counter_{table}_{operation} "
                f"AFTER {operation.upper()} ON {table} BEGIN {_BUMP}; END"
            )


def downgrade() -> None:
    """Drop the triggers and the counter (development only)."""
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER change_counter_{table} ON {table}")
            op.execute(f"DROP TRIGGER change_counter_{table}_truncate ON {table}")
        op.execute(f"DROP FUNCTION {_FUNCTION}()")
    else:
        for table in _TABLES:
            for operation in _OPERATIONS:
                op.execute(f"DROP TRIGGER change_counter_{table}_{operation}")
    op.drop_table("change_counter")
