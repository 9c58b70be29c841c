"""Watched references and their updates in the Store's database."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from verifier.service.model import AuditAction, JobStatus
from verifier.store.bans import Database
from verifier.store.scan_rows import format_timestamp
from verifier.store.tables import (
    AuditEventRow,
    ScanJobRow,
    ScanRow,
    WatchRow,
    WatchUpdateRow,
)
from verifier.watches import Watch

_DONE = (JobStatus.COMPLETE.value,)
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _now() -> datetime:
    return datetime.now(UTC)


class WatchRecords:
    """Watches (never deleted) and each commit the service was asked to verify for one."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def add_watch(self, repo_id: str, ref: str, *, actor: str) -> tuple[Watch, bool]:
        """The watch of `repo_id@ref`, recorded with its audit event when new.

        Returns the watch and whether it was new (a watch is never recorded twice).

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        with self._store._failures("record a watch in"), self._sessions.begin() as session:
            row = session.scalars(
                select(WatchRow).where(
                    func.lower(WatchRow.repo_id) == repo_id.lower(), WatchRow.ref == ref
                )
            ).first()
            created = row is None
            if row is None:
                row = WatchRow(repo_id=repo_id, ref=ref, created_by=actor, created_at=_now())
                session.add(row)
                session.flush()
                session.add(
                    AuditEventRow(
                        at=row.created_at,
                        actor=actor,
                        action=AuditAction.WATCH_ADDED.value,
                        subject=f"hf://{repo_id}@{ref}",
                        detail={"watch": row.id},
                    )
                )
            watch_id = row.id
        return self.get(watch_id), created

    def record_update(self, watch_id: int, *, commit: str | None, job_id: str, source: str) -> None:
        """Record that the commit (None: not resolved yet) of a watch is being verified by
        the scan job `job_id`.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        row = WatchUpdateRow(
            watch_id=watch_id, at=_now(), commit=commit, job_id=job_id, source=source
        )
        with self._store._failures("record a watch update in"), self._sessions.begin() as s:
            s.add(row)

    def requested_commits(self, watch_id: int) -> set[str]:
        """Every commit of a watch that a scan was ever asked for (whatever became of it).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(WatchUpdateRow.commit).where(
            WatchUpdateRow.watch_id == watch_id, WatchUpdateRow.commit.is_not(None)
        )
        with self._store._failures("read the watch updates in"), self._sessions() as session:
            return {commit for commit in session.scalars(query) if commit is not None}

    def watches(self, *, repo_id: str | None = None) -> list[Watch]:
        """Every watch (of `repo_id` when given), oldest first, with its verified commit.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(WatchRow).order_by(WatchRow.id)
        if repo_id is not None:
            query = query.where(func.lower(WatchRow.repo_id) == repo_id.lower())
        updates = (
            select(WatchUpdateRow.watch_id, ScanJobRow.id, ScanJobRow.status, ScanRow)
            .join(ScanJobRow, ScanJobRow.id == WatchUpdateRow.job_id)
            .outerjoin(ScanRow, ScanRow.id == ScanJobRow.scan_id)
            .order_by(WatchUpdateRow.id.desc())
        )
        with self._store._failures("read the watches in"), self._sessions() as session:
            rows = session.scalars(query).all()
            wanted = {row.id for row in rows}
            verified: dict[int, tuple[str | None, str]] = {}
            pending: dict[int, list[str]] = {}
            for watch_id, job_id, status, scan in session.execute(
                updates.where(WatchUpdateRow.watch_id.in_(wanted))
            ):
                if watch_id in verified:
                    continue
                if status in _DONE and scan is not None and scan.status == "complete":
                    commit = scan.source.get("commit")
                    verified[watch_id] = (commit if isinstance(commit, str) else None, scan.id)
                elif status in _OPEN:
                    pending.setdefault(watch_id, []).insert(0, job_id)
            return [
                Watch(
                    watch_id=row.id,
                    repo_id=row.repo_id,
                    ref=row.ref,
                    created_by=row.created_by,
                    created_at=format_timestamp(row.created_at),
                    commit=verified.get(row.id, (None, None))[0],
                    scan_id=verified.get(row.id, (None, None))[1],
                    pending=tuple(pending.get(row.id, ())),
                )
                for row in rows
            ]

    def get(self, watch_id: int) -> Watch:
        """One watch by id (which exists).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        return next(w for w in self.watches() if w.watch_id == watch_id)
