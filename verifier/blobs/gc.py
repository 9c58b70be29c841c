"""Garbage collection of a blob store: delete the blobs no recorded scan names any longer.

A blob is deleted only when all of these hold, checked in this order:

1. no recorded scan (any model at any commit, any status) read it or was declared it;
2. it was stored (or, in the local folder, last used) before the cutoff: the grace period
   before now, and before the oldest scan job still queued or running was asked for (less a
   margin for clocks), so that a blob a job stored is never taken from under it;
3. no job holds it: a job holds each blob from its lookup until it has recorded its scan
   (`BlobLocks`), and the collection takes the same lock, non-blocking, before it deletes;
4. asked again under that lock, still no recorded scan names it.

The collection never waits for a job, and a dry run (the default) deletes nothing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from verifier.blobs.interface import BlobListing, BlobStore, BlobStoreError, StoredBlob
from verifier.errors import UsageError

#: How long a blob is kept after it was stored or used, unless told otherwise (CLI and API).
DEFAULT_OLDER_THAN = "7d"
#: The shortest grace period accepted: clocks of hosts, database and store disagree a little,
#: and a job between its download and its record must never lose its blob.
MIN_GRACE = timedelta(hours=1)
#: Margin for clocks below the oldest open job's creation time.
CLOCK_MARGIN = timedelta(minutes=10)
_DURATION = re.compile(r"^([0-9]{1,5})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class References(Protocol):
    """What the database says about blobs (`verifier.store.blob_refs.BlobReferences`)."""

    def scans(self) -> int:
        """How many scans are recorded."""
        ...

    def referenced(self) -> set[str]:
        """The SHA-256 of every file a recorded scan read or was declared."""
        ...

    def is_referenced(self, sha256: str) -> bool:
        """Whether a recorded scan names this blob now."""
        ...

    def oldest_open_job(self) -> datetime | None:
        """When the oldest queued or running scan job was asked for (None: none is)."""
        ...

    def held(self, sha256: str) -> AbstractContextManager[bool]:
        """Hold the blob's job lock for the block; False when a job holds it."""
        ...

    def record_collection(self, *, actor: str, store: str, detail: dict[str, Any]) -> None:
        """Append the audit event of a collection that deleted."""
        ...


class Kept(enum.StrEnum):
    """Why a blob was kept."""

    REFERENCED = "referenced"
    RECENT = "recent"
    IN_USE = "in_use"


@dataclass(frozen=True)
class Collection:
    """What one collection of one store found and did."""

    store: str
    dry_run: bool
    grace: timedelta
    cutoff: datetime
    examined: int
    kept: Mapping[Kept, int]
    #: The unreferenced blobs older than the cutoff that no job held (deleted unless a dry run).
    garbage: tuple[StoredBlob, ...]
    deleted: frozenset[str] = frozenset()
    #: One line per blob that could not be deleted.
    failures: tuple[str, ...] = ()

    @property
    def garbage_bytes(self) -> int:
        """Bytes the garbage holds."""
        return sum(blob.size for blob in self.garbage)

    def document(self) -> dict[str, Any]:
        """The JSON form (one entry of `verifier blobs gc --format json`'s `stores`)."""
        return {
            "store": self.store,
            "dry_run": self.dry_run,
            "older_than_seconds": int(self.grace.total_seconds()),
            "cutoff": self.cutoff.isoformat(),
            "examined": self.examined,
            "kept": {reason.value: self.kept.get(reason, 0) for reason in Kept},
            "garbage_bytes": self.garbage_bytes,
            "blobs": [
                {
                    "sha256": blob.sha256,
                    "size": blob.size,
                    "stored_at": blob.stored_at.isoformat(),
                    "deleted": blob.sha256 in self.deleted,
                }
                for blob in self.garbage
            ],
            "failures": list(self.failures),
        }

    def audit_detail(self) -> dict[str, Any]:
        """What the audit log keeps of a collection that deleted."""
        return {
            "deleted": len(self.deleted),
            "deleted_bytes": sum(b.size for b in self.garbage if b.sha256 in self.deleted),
            "failures": len(self.failures),
            "cutoff": self.cutoff.isoformat(),
        }

    def lines(self) -> list[str]:
        """The table form: a summary line, then one line per garbage blob."""
        kept = ", ".join(f"{self.kept.get(reason, 0)} {reason.value}" for reason in Kept)
        action = "would delete" if self.dry_run else "deleted"
        count = len(self.garbage) if self.dry_run else len(self.deleted)
        summary = (
            f"{self.store}: {self.examined} blobs; kept {kept}; {action} {count} "
            f"({self.garbage_bytes} bytes of garbage), cutoff {self.cutoff.isoformat()}"
        )
        if self.dry_run and self.garbage:
            summary += "; run with --yes to delete"
        found = [summary]
        for blob in self.garbage:
            state = "deleted" if blob.sha256 in self.deleted else "kept (dry run)"
            if not self.dry_run and blob.sha256 not in self.deleted:
                state = "NOT deleted"
            found.append(
                f"  sha256:{blob.sha256}  {blob.size} bytes  stored {blob.stored_at.isoformat()}"
                f"  {state}"
            )
        found += [f"  error: {failure}" for failure in self.failures]
        return found


def listing_of(store: BlobStore) -> BlobListing:
    """The shared store as something `collect` can list and delete from.

    Raises:
        UsageError: This kind of store cannot be listed.
    """
    if not isinstance(store, BlobListing):
        raise UsageError(f"blob store {store.url} cannot be listed: nothing to collect there")
    return store


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `90m`, `3600s`, `2w` as a duration.

    Raises:
        UsageError: Anything else.
    """
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(
            f"--older-than {text!r}: give a number and a unit, s, m, h, d or w (such as 7d)"
        )
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def collect(
    store: BlobListing,
    references: References,
    *,
    grace: timedelta,
    now: datetime,
    delete: bool,
) -> Collection:
    """Find (and with `delete`, delete) the blobs of `store` no recorded scan names.

    Raises:
        UsageError: The grace period is shorter than `MIN_GRACE`, or the database records no
            scan while the store holds blobs older than the cutoff (the wrong database).
        BlobStoreError: The store could not be listed.
        StoreError: The database cannot be reached or read.
    """
    if grace < MIN_GRACE:
        raise UsageError(f"--older-than must be at least {_hours(MIN_GRACE)}")
    cutoff = now - grace
    oldest = references.oldest_open_job()
    if oldest is not None:
        cutoff = min(cutoff, oldest - CLOCK_MARGIN)
    referenced = references.referenced()
    kept = dict.fromkeys(Kept, 0)
    examined = 0
    candidates: list[StoredBlob] = []
    for blob in store.blobs():
        examined += 1
        if blob.sha256 in referenced:
            kept[Kept.REFERENCED] += 1
        elif blob.stored_at >= cutoff:
            kept[Kept.RECENT] += 1
        else:
            candidates.append(blob)
    if candidates and references.scans() == 0:
        raise UsageError(
            f"the database records no scan, so every blob of {store.url} older than the cutoff "
            "would go: is it the database this store belongs to (--database-url)?"
        )
    garbage: list[StoredBlob] = []
    deleted: set[str] = set()
    failures: list[str] = []
    for blob in sorted(candidates, key=lambda b: b.sha256):  # the jobs' lock order
        outcome = _judge(store, references, blob, delete=delete)
        if isinstance(outcome, Kept):
            kept[outcome] += 1
            continue
        garbage.append(blob)
        if outcome is True:
            deleted.add(blob.sha256)
        elif isinstance(outcome, str):
            failures.append(outcome)
    return Collection(
        store=store.url,
        dry_run=not delete,
        grace=grace,
        cutoff=cutoff,
        examined=examined,
        kept=kept,
        garbage=tuple(garbage),
        deleted=frozenset(deleted),
        failures=tuple(failures),
    )


def collect_stores(
    stores: Sequence[BlobListing],
    references: References,
    *,
    grace: timedelta,
    delete: bool,
    actor: str,
) -> list[Collection]:
    """`collect` each store in turn, each with the audit event of its deletions (`delete`).

    Raises:
        UsageError: See `collect`.
        BlobStoreError: A store could not be listed (the stores before it were collected).
        StoreError: The database cannot be reached, read or written.
    """
    done = []
    for store in stores:
        found = collect(store, references, grace=grace, now=datetime.now(UTC), delete=delete)
        if delete:
            references.record_collection(
                actor=actor, store=found.store, detail=found.audit_detail()
            )
        done.append(found)
    return done


def _judge(
    store: BlobListing, references: References, blob: StoredBlob, *, delete: bool
) -> Kept | bool | str:
    """One candidate: why it was kept, True (deleted), False (garbage a dry run keeps), or
    the line saying why it could not be deleted."""
    with references.held(blob.sha256) as held:
        if not held:
            return Kept.IN_USE
        if references.is_referenced(blob.sha256):
            return Kept.REFERENCED
        if not delete:
            return False
        try:
            store.delete(blob.sha256)
        except BlobStoreError as exc:
            return exc.diagnostics()
        return True


def _hours(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 3600)}h"
