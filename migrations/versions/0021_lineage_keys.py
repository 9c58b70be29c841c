"""Lineage keys: the secret that chooses fingerprints' anchor tokens and kept matrices."""

# Revision 0021. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the lineage_keys table (its one row is written by the first scan that needs it)."""
    op.create_table(
        "lineage_keys",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_keys"),
    )


def downgrade() -> None:
    """Drop the lineage_keys table (development only)."""
    op.drop_table("lineage_keys")
