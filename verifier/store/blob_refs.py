"""What the database says about blobs for `verifier blobs gc`: which are referenced, which a
job holds, and since when scan jobs are open."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, union

from verifier.service.model import AuditAction, JobStatus
from verifier.store.database import Store
from verifier.store.service_records import BlobLocks
from verifier.store.tables import (
    AuditEventRow,
    DeclaredFileRow,
    ScanFileRow,
    ScanJobRow,
    ScanRow,
)

_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class BlobReferences:
    """The references to blobs recorded in one database (a `verifier.blobs.gc.References`)."""

    def __init__(self, store: Store) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def scans(self) -> int:
        """How many scans are recorded.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        with self._store._failures("count the scans in"), self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(ScanRow)) or 0)

    def referenced(self) -> set[str]:
        """The SHA-256 of every file any recorded scan read or was declared (any model at any
        commit, any status: a blob is kept while one record names it).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = union(
            select(ScanFileRow.sha256).where(ScanFileRow.sha256.is_not(None)),
            select(DeclaredFileRow.sha256).where(DeclaredFileRow.sha256.is_not(None)),
        )
        with self._store._failures("read the recorded files of"), self._sessions() as session:
            return {str(sha256) for sha256 in session.scalars(query)}

    def is_referenced(self, sha256: str) -> bool:
        """Whether a recorded scan names this blob now (asked again under the blob's lock).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        read = select(ScanFileRow.id).where(ScanFileRow.sha256 == sha256).limit(1)
        declared = select(DeclaredFileRow.id).where(DeclaredFileRow.sha256 == sha256).limit(1)
        with self._store._failures("read the recorded files of"), self._sessions() as session:
            return session.scalar(read) is not None or session.scalar(declared) is not None

    def oldest_open_job(self) -> datetime | None:
        """When the oldest scan job still queued or running was asked for (None: none is).

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(func.min(ScanJobRow.created_at)).where(ScanJobRow.status.in_(_OPEN))
        with self._store._failures("read the scan jobs of"), self._sessions() as session:
            found: datetime | None = session.scalar(query)
            return found

    @contextmanager
    def held(self, sha256: str) -> Iterator[bool]:
        """Hold the blob's lock, the one every job takes from its lookup of a blob until it
        has recorded its scan; yields False when a job holds it (it is in use). Never waits.

        Raises:
            StoreError: The database cannot be reached.
        """
        locks = BlobLocks(self._store)
        try:
            yield locks.try_hold(sha256)
        finally:
            locks.release()

    def record_collection(self, *, actor: str, store: str, detail: dict[str, Any]) -> None:
        """Append the audit event of a collection that deleted (not a dry run).

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        event = AuditEventRow(
            at=datetime.now(UTC),
            actor=actor,
            action=AuditAction.BLOBS_COLLECTED.value,
            subject=store,
            detail=detail,
        )
        with self._store._failures("record a collection in"), self._sessions.begin() as session:
            session.add(event)
