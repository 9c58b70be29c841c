"""Approvals: the organisation countersignatures `verifier approve` wrote (append-only)."""

# Revision 0007. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the approvals table."""
    op.create_table(
        "approvals",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("bundle_sha256", sa.String(64), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_approvals"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_approvals_scan_id_scans"),
    )
    op.create_index("ix_approvals_scan_id", "approvals", ["scan_id"])


def downgrade() -> None:
    """Drop the approvals table (development only)."""
    op.drop_index("ix_approvals_scan_id", table_name="approvals")
    op.drop_table("approvals")
