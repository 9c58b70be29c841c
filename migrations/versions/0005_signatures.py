"""Signatures: the model signature check of each scan (append-only)."""

# Revision 0005. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the signatures table."""
    op.create_table(
        "signatures",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(16), nullable=True),
        sa.Column("signer", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=True),
        sa.Column("key_fingerprint", sa.String(128), nullable=True),
        sa.Column("certificate_subject", sa.Text(), nullable=True),
        sa.Column("key_usage", sa.JSON(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("predicate_type", sa.Text(), nullable=True),
        sa.Column("digest_algorithm", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
        sa.Column("outside", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signatures"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_signatures_scan_id_scans"),
    )
    op.create_index("ix_signatures_scan_id", "signatures", ["scan_id"])
    op.create_index("ix_signatures_signer", "signatures", ["signer"])


def downgrade() -> None:
    """Drop the signatures table."""
    op.drop_table("signatures")
