"""Policy decisions: environment and waivers on decisions; scan_facts for re-deciding."""

# Revision 0003. Hand-written, checked against verifier/store/tables.py by the store tests.
# Only adds: nullable columns (older decisions had no environment or waivers) and a new table.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Add the decision's environment and waivers, and the scan facts table."""
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("environment", sa.String(64), nullable=True))
        batch.add_column(sa.Column("waivers", sa.JSON(), nullable=True))
    op.create_table(
        "scan_facts",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scan_facts"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_scan_facts_scan_id_scans"),
        sa.UniqueConstraint("scan_id", name="uq_scan_facts_scan_id"),
    )
    op.create_index("ix_scan_facts_subject", "scan_facts", ["subject"])


def downgrade() -> None:
    """Remove what upgrade added (development only)."""
    op.drop_table("scan_facts")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("waivers")
        batch.drop_column("environment")
