"""Waivers recorded through the service can be revoked before they expire (append-only)."""

# Revision 0016. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the waiver_revocations table."""
    op.create_table(
        "waiver_revocations",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("waiver_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["waiver_id"],
            ["waivers.waiver_id"],
            name="fk_waiver_revocations_waiver_id_waivers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_waiver_revocations"),
        sa.UniqueConstraint("waiver_id", name="uq_waiver_revocations_waiver_id"),
    )


def downgrade() -> None:
    """Drop the waiver_revocations table (development only)."""
    op.drop_table("waiver_revocations")
