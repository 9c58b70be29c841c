"""The change counter (migration 0016): what lets a server keep gate answers in memory safely.

Every insert, update or delete in one of `GATE_TABLES` moves the counter in the same
transaction, by a database trigger. A reader that reads the counter *before* it reads those
tables may keep what it read for as long as the counter still has that value: nothing it read
can have changed meanwhile. The counter is read in autocommit, so each read sees every change
committed before it began.
"""

from __future__ import annotations

from sqlalchemy import select

from verifier.store.bans import Database
from verifier.store.tables import ChangeCounterRow


def change_count(store: Database) -> int:
    """The counter's value now.

    Raises:
        StoreError: The database cannot be reached or read, or it has no counter (a schema
            older than revision 0016 never serves cached answers).
    """
    query = select(ChangeCounterRow.value).where(ChangeCounterRow.id == 1)
    with store._failures("read the change counter of"), store._sessions() as session:
        value = session.execute(query).scalar_one()
    return int(value)
