"""Bans (append-only, lifts are rows of their own), what each reached, and decision changes."""

# Revision 0010. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the bans, ban_reach and decision_changes tables."""
    op.create_table(
        "bans",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifts", ROW_ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bans"),
        sa.ForeignKeyConstraint(["lifts"], ["bans.id"], name="fk_bans_lifts_bans"),
    )
    op.create_index("ix_bans_lifts", "bans", ["lifts"])
    op.create_table(
        "ban_reach",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("ban", ROW_ID, nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ban_reach"),
        sa.ForeignKeyConstraint(["ban"], ["bans.id"], name="fk_ban_reach_ban_bans"),
    )
    op.create_index("ix_ban_reach_subject", "ban_reach", ["subject"])
    op.create_table(
        "decision_changes",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("policy_name", sa.Text(), nullable=False),
        sa.Column("policy_digest", sa.Text(), nullable=False),
        sa.Column("environment", sa.String(64), nullable=True),
        sa.Column("previous", sa.String(16), nullable=True),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decision_changes"),
        sa.ForeignKeyConstraint(
            ["scan_id"], ["scans.id"], name="fk_decision_changes_scan_id_scans"
        ),
    )
    op.create_index("ix_decision_changes_scan_id", "decision_changes", ["scan_id"])
    op.create_index("ix_decision_changes_at", "decision_changes", ["at"])


def downgrade() -> None:
    """Drop the bans, ban_reach and decision_changes tables (development only)."""
    op.drop_index("ix_decision_changes_at", table_name="decision_changes")
    op.drop_index("ix_decision_changes_scan_id", table_name="decision_changes")
    op.drop_table("decision_changes")
    op.drop_index("ix_ban_reach_subject", table_name="ban_reach")
    op.drop_table("ban_reach")
    op.drop_index("ix_bans_lifts", table_name="bans")
    op.drop_table("bans")
