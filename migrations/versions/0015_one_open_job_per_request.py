"""One open scan job per request: the unique `open_key` of `scan_jobs`."""

# Revision 0015. Hand-written, checked against verifier/store/tables.py by
# tests/store/test_store.py.

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = ("queued", "running")


def _key(target: str, policy_digest: str, environment: str | None) -> str:
    # As `ScanJob.request_key` computes it (frozen here: migrations never change).
    return hashlib.sha256(json.dumps([target, policy_digest, environment]).encode()).hexdigest()


def upgrade() -> None:
    """Add `open_key`, fill it for the open jobs, and make it unique.

    Open jobs recorded twice for the same request before this revision (two requests at the
    same moment) keep the oldest; the others are failed, naming it.
    """
    op.add_column("scan_jobs", sa.Column("open_key", sa.String(64), nullable=True))
    jobs = sa.table(
        "scan_jobs",
        sa.column("id", sa.String),
        sa.column("target", sa.Text),
        sa.column("policy_digest", sa.Text),
        sa.column("environment", sa.String),
        sa.column("status", sa.String),
        sa.column("error", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("open_key", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(jobs.c.id, jobs.c.target, jobs.c.policy_digest, jobs.c.environment)
        .where(jobs.c.status.in_(_OPEN))
        .order_by(jobs.c.created_at, jobs.c.id)
    ).all()
    kept: dict[str, str] = {}
    now = datetime.now(UTC)
    for job_id, target, policy_digest, environment in rows:
        key = _key(target, policy_digest, environment)
        first = kept.setdefault(key, job_id)
        values: dict[str, object] = (
            {"open_key": key}
            if first == job_id
            else {
                "status": "failed",
                "error": f"a duplicate of scan job {first}, which answers the same request",
                "updated_at": now,
            }
        )
        bind.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))
    op.create_index("uq_scan_jobs_open_key", "scan_jobs", ["open_key"], unique=True)


def downgrade() -> None:
    """Drop `open_key` (development only)."""
    op.drop_index("uq_scan_jobs_open_key", table_name="scan_jobs")
    with op.batch_alter_table("scan_jobs") as batch:
        batch.drop_column("open_key")
