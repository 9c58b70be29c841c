"""Where the re-scans after a scanner upgrade stand, for operators (`GET /api/v1/rescans`, the
dashboard's audit page): each recorded Hub model an older verifier version scanned, and each
one this version re-scanned, read from the database and the blob stores as the upkeep pass
reads them (`verifier.service.upkeep.rescan_older_versions`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from verifier import __version__, config
from verifier.service.model import JobStatus, Rescanner, RescanState, ScanJob
from verifier.service.upkeep import hold_reason, scanned_by_older
from verifier.store.service_records import NewestScan

if TYPE_CHECKING:
    from verifier.service.core import Service

#: Most models one answer examines: telling held from waiting asks the shared store about
#: every file of the model.
MAX_RESCANS = 1_000
#: Models examined unless told otherwise.
DEFAULT_RESCANS = 100


@dataclass(frozen=True)
class RescanEntry:
    """One model's re-scan: where it stands, and why when it is held or failed."""

    target: str
    state: RescanState
    #: The verifier version of the model's newest recorded scan, and that scan.
    tool_version: str
    scan_id: str
    job: str | None = None
    reason: str | None = None

    def document(self) -> dict[str, Any]:
        """The JSON form (one entry of `rescans`)."""
        return {
            "target": self.target,
            "state": self.state.value,
            "tool_version": self.tool_version,
            "scan_id": self.scan_id,
            "job": self.job,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RescanOverview:
    """The models examined, in target order, and whether more were left unexamined."""

    version: str
    from_hub: bool
    per_pass: int
    examined: int
    truncated: bool
    rescans: tuple[RescanEntry, ...]

    def document(self) -> dict[str, Any]:
        """The answer of `GET /api/v1/rescans`."""
        return {
            "version": self.version,
            "from_hub": self.from_hub,
            "per_pass": self.per_pass,
            "examined": self.examined,
            "truncated": self.truncated,
            "rescans": [entry.document() for entry in self.rescans],
        }


def rescan_overview(
    service: Service, *, limit: int = DEFAULT_RESCANS, state: RescanState | None = None
) -> RescanOverview:
    """Examine, in target order, up to `limit` recorded Hub models that an older verifier
    version scanned last or that this version's re-scanner asked for, and say where each
    re-scan stands (only those in `state`, when given). `truncated`: more were left.

    Held and waiting are told apart as the upkeep pass does, on this server's host: its
    folder and the shared store (a store that cannot be asked holds the model, with why).

    Raises:
        StoreError: The database cannot be reached or read.
    """
    from_hub = service.config.rescan_from_hub
    found: list[RescanEntry] = []
    examined, truncated = 0, False
    try:
        running = Version(__version__)
    except InvalidVersion:  # the pass re-scans nothing either (and logs it)
        running = None
    if running is not None:
        jobs = service.records.jobs_requested_by(Rescanner(__version__, from_hub=from_hub).actor)
        home = config.home_dir()
        for subject, newest in sorted(service.records.scanner_versions().items()):
            job = jobs.get(subject)
            older = scanned_by_older(newest.tool_version, running)
            if not older and (job is None or job.status is not JobStatus.COMPLETE):
                continue  # nothing to re-scan, or scanned by this version otherwise
            if examined >= limit:
                truncated = True
                break
            examined += 1
            entry = _entry(service, subject, newest, job, older=older, home=home)
            if state is None or entry.state is state:
                found.append(entry)
    return RescanOverview(
        version=__version__,
        from_hub=from_hub,
        per_pass=service.config.rescan_per_pass,
        examined=examined,
        truncated=truncated,
        rescans=tuple(found),
    )


def _entry(
    service: Service,
    subject: str,
    newest: NewestScan,
    job: ScanJob | None,
    *,
    older: bool,
    home: Path,
) -> RescanEntry:
    """Where one model's re-scan stands (see `RescanState`)."""
    base = {"target": subject, "tool_version": newest.tool_version, "scan_id": newest.scan_id}
    if job is not None:
        if job.open:
            return RescanEntry(state=RescanState.QUEUED, job=job.job_id, **base)
        if job.status is JobStatus.FAILED:
            return RescanEntry(state=RescanState.FAILED, job=job.job_id, reason=job.error, **base)
        return RescanEntry(state=RescanState.DONE, job=job.job_id, **base)
    reason = None
    if older and not service.config.rescan_from_hub:
        reason = hold_reason(service, newest.scan_id, home=home)
    held = reason is not None
    return RescanEntry(
        state=RescanState.HELD if held else RescanState.WAITING, reason=reason, **base
    )
