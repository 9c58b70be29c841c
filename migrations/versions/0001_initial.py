"""Initial schema: scans, scan_files, findings and decisions."""

# Revision 0001, the first. Hand-written: explicit op calls with explicit constraint names,
# checked against verifier/store/tables.py by tests/store/test_store.py.

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 64-bit row ids on servers; SQLite only autoincrements a column declared INTEGER.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the four audit-trail tables and their indexes."""
    op.create_table(
        "scans",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("source_type", sa.String(64), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tool_version", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_scans"),
    )
    op.create_index("ix_scans_started_at", "scans", ["started_at"])

    op.create_table(
        "scan_files",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("git_sha1", sa.String(40), nullable=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scan_files"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_scan_files_scan_id_scans"),
        sa.UniqueConstraint("scan_id", "path", name="uq_scan_files_scan_id_path"),
    )
    op.create_index("ix_scan_files_sha256", "scan_files", ["sha256"])

    op.create_table(
        "findings",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("code", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("member", sa.Text(), nullable=True),
        sa.Column("byte_offset", sa.BigInteger(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_findings_scan_id_scans"),
    )
    op.create_index("ix_findings_scan_id", "findings", ["scan_id"])
    op.create_index("ix_findings_code", "findings", ["code"])

    op.create_table(
        "decisions",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("policy_name", sa.Text(), nullable=False),
        sa.Column("policy_digest", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
        sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name="fk_decisions_scan_id_scans"),
    )
    op.create_index("ix_decisions_scan_id", "decisions", ["scan_id"])


def downgrade() -> None:
    """Drop the audit trail (development only: it destroys every record)."""
    op.drop_table("decisions")
    op.drop_table("findings")
    op.drop_table("scan_files")
    op.drop_table("scans")
