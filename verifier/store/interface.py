"""The recorder seam: what the scan pipeline needs from where it records, in one protocol.

A scan reads three things from its recorder before it records: the bans in force that reach
the model (`verifier.bans.BanLookup`), the fingerprints verified lineage compares with
(`verifier.lineage.verify.References`) and the files verified before by digest
(`verifier.sources.interface.VerifiedFiles`). `ScanRecorder` asks for all of them with the
two writes, so a recorder that lacks one is a type error (`mypy --strict`), never a scan that
quietly does less. The pipeline's entry points take a `ScanRecorder` or None: None records
nothing and looks nothing up (no bans, no recorded fingerprints, every file read again).

Implemented by `Store` and `SQLiteRecorder` (both `ScanStore`s, which `verifier scan` opens
and closes) and by the service's `JobRecorder`. Light to import: the protocols it combines
load their heavy code where it runs, and nothing here imports the pipeline or SQLAlchemy.
"""

from __future__ import annotations

from typing import Protocol, Self

from verifier.bans import BanLookup
from verifier.lineage.verify import References
from verifier.model import ScanReport
from verifier.sources.interface import VerifiedFiles

__all__ = ["ScanRecorder", "ScanStore"]


class ScanRecorder(BanLookup, References, VerifiedFiles, Protocol):
    """Where finished and failed scans are recorded, with what a scan looks up there first."""

    def record_scan(self, report: ScanReport, *, bans_seen: int | None = None) -> None:
        """Record a decided scan: its files, findings, facts and verdict, all or nothing.

        With `bans_seen`, the bans' generation (`ban_generation`) read before the decision
        looked up the bans in force, the scan is recorded only if no ban was made or lifted
        since: checked in the recording transaction, in order with every ban's own (see
        `verifier.store.scan_tables.lock_bans`), so a ban made while the scan was deciding is
        either seen by the ban's re-decision of the recorded models or refused here.

        Raises:
            BansChangedError: A ban was made or lifted since `bans_seen`; nothing is kept.
            StoreError: The database refused the write; nothing of the scan is kept.
        """
        ...

    def record_failed_scan(
        self,
        *,
        scan_id: str,
        target: str,
        started_at: str,
        finished_at: str,
        tool_version: str,
        error: str,
    ) -> None:
        """Record a scan that broke as failed (never allowed).

        Raises:
            StoreError: The database refused the write.
        """
        ...


class ScanStore(ScanRecorder, Protocol):
    """A `ScanRecorder` that is opened and closed (`Store`, `SQLiteRecorder`)."""

    def close(self) -> None:
        """Release the connections held."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *_: object) -> None: ...
