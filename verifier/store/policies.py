"""The policy in force (migration 0019): one row, shared by every server of the database.

The server that starts with policy files whose digest differs from the row, or reloads files
that changed, puts its files in force (whatever the policy's name: one organisation, one
policy); every other server compares its own files with the row whenever the change
counter moves (the row is one of the `GATE_TABLES`), reads its files again when they differ,
and answers `unknown` while they still do. So no server keeps deciding, or serving kept
answers, under a policy another server replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from verifier.errors import StoreError
from verifier.store.bans import Database
from verifier.store.scan_rows import format_timestamp
from verifier.store.tables import PolicyInForceRow

_ROW = 1


@dataclass(frozen=True)
class PolicyInForce:
    """Which files a policy is decided with, and who put them in force when."""

    name: str
    files_digest: str
    set_at: str
    set_by: str


class PolicyRecords:
    """The `policies_in_force` rows."""

    def __init__(self, store: Database) -> None:
        """Use `store`'s database (opened, so at the newest schema)."""
        self._store = store
        self._sessions = store._sessions

    def in_force(self) -> PolicyInForce | None:
        """The policy files in force, or None when no server put any.

        Raises:
            StoreError: The database cannot be reached or read.
        """
        query = select(PolicyInForceRow).where(PolicyInForceRow.id == _ROW)
        with self._store._failures("read the policy in force in"), self._sessions() as session:
            row = session.scalars(query).first()
            if row is None:
                return None
            return PolicyInForce(
                name=row.name,
                files_digest=row.files_digest,
                set_at=format_timestamp(row.set_at),
                set_by=row.set_by,
            )

    def put_in_force(self, name: str, files_digest: str, *, actor: str) -> bool:
        """Put the files of policy `name` with digest `files_digest` in force; False (and
        nothing written, so the change counter stays) when they are already.

        Raises:
            StoreError: The database cannot be reached or refused the write.
        """
        for attempt in (1, 2):
            try:
                return self._put(name, files_digest, actor=actor)
            except StoreError as exc:
                # Two servers starting together both inserted the first row: read it again.
                if attempt == 2 or not isinstance(exc.__cause__, IntegrityError):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _put(self, name: str, files_digest: str, *, actor: str) -> bool:
        query = select(PolicyInForceRow).where(PolicyInForceRow.id == _ROW).with_for_update()
        at = datetime.now(UTC)
        with self._store._failures("put a policy in force in"), self._sessions.begin() as session:
            row = session.scalars(query).first()
            if row is not None and row.files_digest == files_digest:
                return False
            if row is None:
                session.add(
                    PolicyInForceRow(
                        id=_ROW, name=name, files_digest=files_digest, set_at=at, set_by=actor
                    )
                )
            else:
                row.name, row.files_digest, row.set_at, row.set_by = name, files_digest, at, actor
        return True
