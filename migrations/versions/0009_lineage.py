"""Verified lineage: weight fingerprints per scan and the bases the organisation registered."""

# Revision 0009. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the weight_fingerprints and lineage_bases tables."""
    op.create_table(
        "weight_fingerprints",
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("repo_id", sa.Text(), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("publisher", sa.Text(), nullable=True),
        sa.Column("hidden_size", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id", name="pk_weight_fingerprints"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name="fk_weight_fingerprints_scan_id_scans"
        ),
    )
    op.create_index(
        "ix_weight_fingerprints_hidden_size", "weight_fingerprints", ["hidden_size"]
    )
    op.create_table(
        "lineage_bases",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_bases"),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["weight_fingerprints.scan_id"],
            name="fk_lineage_bases_scan_id_weight_fingerprints",
        ),
    )
    op.create_index("ix_lineage_bases_scan_id", "lineage_bases", ["scan_id"])


def downgrade() -> None:
    """Drop the lineage tables (development only)."""
    op.drop_index("ix_lineage_bases_scan_id", table_name="lineage_bases")
    op.drop_table("lineage_bases")
    op.drop_index("ix_weight_fingerprints_hidden_size", table_name="weight_fingerprints")
    op.drop_table("weight_fingerprints")
