"""The change counter (migration 0017): what lets a server keep gate answers in memory safely.

Every insert, update or delete in one of `GATE_TABLES` moves the counter in the same
transaction, by a database trigger. A reader that reads the counter *before* it reads those
tables may keep what it read for as long as the counter still has that value: nothing it read
can have changed meanwhile. The counter is read in autocommit, so each read sees every change
committed before it began.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy import select

from verifier.errors import StoreError
from verifier.store.bans import Database
from verifier.store.database import Store
from verifier.store.tables import ChangeCounterRow

_QUERY = "SELECT value FROM change_counter WHERE id = 1"
#: How long a read of the counter on SQLite waits for a writer's lock, in milliseconds.
SQLITE_BUSY_MS = 250


def change_count(store: Database) -> int:
    """The counter's value now, read in a session of the store's pool.

    Raises:
        StoreError: The database cannot be reached or read, or it has no counter (a schema
            older than revision 0017 never serves cached answers).
    """
    query = select(ChangeCounterRow.value).where(ChangeCounterRow.id == 1)
    with store._failures("read the change counter of"), store._sessions() as session:
        value = session.execute(query).scalar_one()
    return int(value)


class ChangeCounter:
    """Reads of the counter on one connection of its own, in autocommit (thread-safe).

    A pooled session costs a checkout, the query and a rollback: 0.4 to 1.5 ms here. One
    statement on a kept connection costs 20 to 60 microseconds, and this read is made for
    every request the gate answers from memory.
    """

    def __init__(self, store: Store) -> None:
        """Read `store`'s database (opened, so at the newest schema); connects on first use."""
        self._store = store
        self._lock = threading.Lock()
        self._connection: Any = None

    def read(self) -> int:
        """The counter's value now.

        Raises:
            StoreError: The database cannot be reached or read (the connection is dropped
                and made again by the next read).
        """
        errors = self._store._engine.dialect.loaded_dbapi.Error
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = self._connect()
                cursor = self._connection.cursor()
                try:
                    cursor.execute(_QUERY)
                    row = cursor.fetchone()
                finally:
                    cursor.close()
            except errors as exc:
                self._drop()
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StoreError(
                    f"cannot read the change counter of the database at "
                    f"{self._store.display_url}: {reason}"
                ) from exc
        if row is None:
            raise StoreError(f"the database at {self._store.display_url} has no change counter row")
        return int(row[0])

    def _connect(self) -> Any:
        with self._store._failures("connect for the change counter to"):
            pooled = self._store._engine.raw_connection()
        connection: Any = pooled.driver_connection
        pooled.detach()  # ours alone, closed by `close`, never handed back to the pool
        if self._store.backend == "postgresql":
            connection.autocommit = True  # each statement sees what was committed before it
        else:
            # A writer's commit holds the file for milliseconds; a read that waits longer
            # fails (the server's route then answers from the database), so a read made on
            # the event loop never stalls it for long.
            connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        return connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(self._store._engine.dialect.loaded_dbapi.Error):
                connection.close()  # already broken, maybe: closing is best effort

    def close(self) -> None:
        """Close the connection (a later read opens another)."""
        with self._lock:
            self._drop()
