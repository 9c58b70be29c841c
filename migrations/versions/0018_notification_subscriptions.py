"""Notification subscriptions: where notifications go, recorded as data, not server flags."""

# Revision 0018. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the notification_subscriptions table."""
    op.create_table(
        "notification_subscriptions",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("waiver_days", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(128), nullable=True),
        sa.Column("publisher", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_subscriptions"),
        sa.UniqueConstraint("url", name="uq_notification_subscriptions_url"),
    )


def downgrade() -> None:
    """Drop the notification_subscriptions table (development only)."""
    op.drop_table("notification_subscriptions")
