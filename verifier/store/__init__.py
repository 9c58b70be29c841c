"""The only place that touches the database: records scans and reads them back as model types.

`Store` (SQLAlchemy) is imported when first named, so that `verifier scan`'s SQLite recorder
(`sqlite_recorder`, the standard library's `sqlite3`) does not load SQLAlchemy with it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from verifier.store.database import Store

__all__ = ["Store"]


def __getattr__(name: str) -> object:
    if name == "Store":
        from verifier.store.database import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
