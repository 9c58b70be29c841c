"""Signatures: the SHA-256 of the signature bundle itself (for evidence documents)."""

# Revision 0006. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py. Adds one nullable column: rows written before it have none.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add signatures.bundle_sha256."""
    with op.batch_alter_table("signatures") as batch:
        batch.add_column(sa.Column("bundle_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop signatures.bundle_sha256."""
    with op.batch_alter_table("signatures") as batch:
        batch.drop_column("bundle_sha256")
