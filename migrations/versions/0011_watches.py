"""Watched Hub references and the commits verified for them."""

# Revision 0011. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the watches and watch_updates tables."""
    op.create_table(
        "watches",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_watches"),
    )
    op.create_index("ix_watches_repo_id", "watches", ["repo_id"])
    op.create_table(
        "watch_updates",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("watch_id", ROW_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_watch_updates"),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name="fk_watch_updates_watch_id_watches"
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["scan_jobs.id"], name="fk_watch_updates_job_id_scan_jobs"
        ),
    )
    op.create_index("ix_watch_updates_watch_id", "watch_updates", ["watch_id"])


def downgrade() -> None:
    """Drop the watch tables (development only)."""
    op.drop_index("ix_watch_updates_watch_id", table_name="watch_updates")
    op.drop_table("watch_updates")
    op.drop_index("ix_watches_repo_id", table_name="watches")
    op.drop_table("watches")
