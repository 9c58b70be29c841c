"""The policy in force: the policy files every server sharing the database decides with."""

# Revision 0019. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py; tests/store/test_change_counter.py checks the triggers.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
# After 0021 (lineage keys), which landed before this one: a database already at 0021 must
# still be upgraded to this revision, so it is not slotted in before it.
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Added to `verifier.store.tables.GATE_TABLES` by this revision (frozen, as in 0017).
_TABLES = ("policies_in_force",)
_OPERATIONS = ("insert", "update", "delete")
_BUMP = "UPDATE change_counter SET value = value + 1 WHERE id = 1"
# Made by revision 0017.
_FUNCTION = "verifier_count_change"


def upgrade() -> None:
    """Create the table and the triggers that move the change counter on its every change."""
    op.create_table(
        "policies_in_force",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("files_digest", sa.String(80), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policies_in_force"),
    )
    if op.get_bind().dialect.name == "postgresql":
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
    """Drop the triggers and the table (development only)."""
    if op.get_bind().dialect.name == "postgresql":
        for table in _TABLES:
            op.execute(f"DROP TRIGGER change_counter_{table} ON {table}")
            op.execute(f"DROP TRIGGER change_counter_{table}_truncate ON {table}")
    else:
        for table in _TABLES:
            for operation in _OPERATIONS:
                op.execute(f"DROP TRIGGER change_counter_{table}_{operation}")
    op.drop_table("policies_in_force")
