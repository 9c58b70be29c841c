"""Model details: facts a scan read in its one pass (config.json, safetensors headers, card)."""

# Revision 0002. Append-only: one row per scan, written with the scan, never updated.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the model_details table."""
    op.create_table(
        "model_details",
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("scan_id", name="pk_model_details"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name="fk_model_details_scan_id_scans"
        ),
    )


def downgrade() -> None:
    """Drop the model_details table."""
    op.drop_table("model_details")
