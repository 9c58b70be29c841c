"""Waivers recorded through the service (`POST /api/v1/waivers`)."""

# Revision 0014. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the waivers table."""
    op.create_table(
        "waivers",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("waiver_id", sa.String(128), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("expires", sa.Date(), nullable=False),
        sa.Column("approved_by", sa.Text(), nullable=False),
        sa.Column("ticket", sa.Text(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_waivers"),
        sa.UniqueConstraint("waiver_id", name="uq_waivers_waiver_id"),
    )


def downgrade() -> None:
    """Drop the waivers table (development only)."""
    op.drop_table("waivers")
