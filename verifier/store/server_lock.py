"""One server per SQLite database: an exclusive lock next to the file, held while it serves.

The embedded mode (`verifier serve` on SQLite) runs the scan jobs on threads of its own process
and, at start, runs again every job left unfinished: a second server on the same file would run
them too. The first server holds an exclusive `flock` on `<database>.serve.lock` for its life;
another process that asks for it is refused at once (`ServerBusyError`), naming the holder. The
kernel drops the lock when its holder dies, even by SIGKILL, so a crashed server never blocks
the next one. Services of one process share the lock (tests run several app instances on one
file). PostgreSQL needs none: one server at a time queues the unfinished jobs there.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from verifier.errors import StoreError
from verifier.store.database import Store

#: What a lock file is named after: `<database file name>` + this.
LOCK_SUFFIX = ".serve.lock"
_HOLDER_BYTES = 256


class ServerBusyError(StoreError):
    """Another process serves this SQLite database (exit 3: could not complete)."""


@dataclass
class _Held:
    descriptor: int
    count: int


_guard = threading.Lock()
_held: dict[Path, _Held] = {}


class ServerLock:
    """The lock one service holds on its SQLite database (nothing for other databases)."""

    def __init__(self, path: Path | None) -> None:
        """Stand for the lock on `path`, taken (None: no lock was needed or possible)."""
        self.path = path

    def release(self) -> None:
        """Let go (the last service of the process unlocks the file); again does nothing."""
        path, self.path = self.path, None
        if path is None:
            return
        import fcntl

        with _guard:
            held = _held[path]
            held.count -= 1
            if held.count == 0:
                del _held[path]
                fcntl.flock(held.descriptor, fcntl.LOCK_UN)
                os.close(held.descriptor)


def hold_server_lock(store: Store) -> ServerLock:
    """Take the lock of `store`'s SQLite file for a server (see the module).

    Raises:
        ServerBusyError: Another process holds it: it serves this database.
        StoreError: The lock file cannot be created or locked.
    """
    database = store.sqlite_file
    if database is None:
        return ServerLock(None)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: nothing stops a second server
        return ServerLock(None)
    real = Path(os.path.realpath(database))
    path = real.with_name(real.name + LOCK_SUFFIX)
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.count += 1
            return ServerLock(path)
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the server lock {path}: {exc.strerror}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(descriptor)
            os.close(descriptor)
            if isinstance(exc, BlockingIOError):
                raise ServerBusyError(
                    f"another verifier server ({holder}) serves the SQLite database {database} "
                    f"(lock {path}): on SQLite one server runs the scans; stop that one, or "
                    "use PostgreSQL (--database-url postgresql+psycopg://...) for several"
                ) from None
            raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
        _record_holder(descriptor)
        _held[path] = _Held(descriptor, 1)
        return ServerLock(path)


def _record_holder(descriptor: int) -> None:
    """Write who holds the lock into its file, for the message another server prints."""
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"pid {os.getpid()} on {socket.gethostname()}, since {since}"
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, text.encode()[:_HOLDER_BYTES], 0)
    except OSError:
        pass  # the lock holds without it; the message then names no process


def _holder(descriptor: int) -> str:
    try:
        text = os.pread(descriptor, _HOLDER_BYTES, 0).decode("utf-8", "replace")
    except OSError:
        text = ""
    shown = "".join(c for c in text if c.isprintable()).strip()
    return shown or "its process is not named"
