"""Hub sources: the pinned revision and provenance, declared files, and lineage edges."""

# Revision 0004. Hand-written, checked against verifier/store/tables.py by the store tests.
# Only adds tables (append-only, like the rest of the audit trail).

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _scan_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["scan_id"], ["scans.id"], name=f"fk_{table}_scan_id_scans")


def upgrade() -> None:
    """Create source_revisions, declared_files and lineage_edges."""
    op.create_table(
        "source_revisions",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("source_type", sa.String(32), nullable=False),
        sa.Column("repo_id", sa.Text(), nullable=False),
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("revision_requested", sa.Text(), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(64), nullable=True),
        sa.Column("last_modified", sa.String(64), nullable=True),
        sa.Column("gated", sa.String(32), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=True),
        sa.Column("license", sa.Text(), nullable=True),
        sa.Column("license_name", sa.Text(), nullable=True),
        sa.Column("license_link", sa.Text(), nullable=True),
        sa.Column("library_name", sa.Text(), nullable=True),
        sa.Column("pipeline_tag", sa.Text(), nullable=True),
        sa.Column("base_model_relation", sa.Text(), nullable=True),
        sa.Column("hub_security_status", sa.Text(), nullable=True),
        sa.Column("metadata_lists", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_source_revisions"),
        _scan_fk("source_revisions"),
        sa.UniqueConstraint("scan_id", name="uq_source_revisions_scan_id"),
    )
    op.create_index(
        "ix_source_revisions_repo_id_commit", "source_revisions", ["repo_id", "commit"]
    )
    op.create_table(
        "declared_files",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("git_sha1", sa.String(40), nullable=True),
        sa.Column("lfs", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_declared_files"),
        _scan_fk("declared_files"),
        sa.UniqueConstraint("scan_id", "path", name="uq_declared_files_scan_id_path"),
    )
    op.create_index("ix_declared_files_sha256", "declared_files", ["sha256"])
    op.create_table(
        "lineage_edges",
        sa.Column("id", ROW_ID, autoincrement=True, nullable=False),
        sa.Column("scan_id", sa.String(32), nullable=False),
        sa.Column("child", sa.Text(), nullable=False),
        sa.Column("child_commit", sa.String(64), nullable=False),
        sa.Column("parent", sa.Text(), nullable=False),
        sa.Column("parent_commit", sa.String(64), nullable=True),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("parent_license", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
        _scan_fk("lineage_edges"),
    )
    op.create_index("ix_lineage_edges_scan_id", "lineage_edges", ["scan_id"])
    op.create_index("ix_lineage_edges_parent", "lineage_edges", ["parent"])


def downgrade() -> None:
    """Remove what upgrade added (development only)."""
    op.drop_table("lineage_edges")
    op.drop_table("declared_files")
    op.drop_table("source_revisions")
