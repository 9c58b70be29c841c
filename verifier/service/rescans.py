"""Re-scans after an upgrade: which recorded models need one (`rescan_need`, the one definition
the upkeep pass and the route share), in which order (`rescan_order`), and where each stands, for
operators (`GET /api/v1/rescans`, the dashboard's audit page), read from the database and the
blob stores as the upkeep pass reads them (`verifier.service.upkeep.rescan_older_versions`).

A model needs a re-scan when its newest scan was made by an older verifier version, or when
that scan is complete and recorded a weight fingerprint of an older fingerprint version
(`verifier.lineage.fingerprint.FINGERPRINT_VERSION`): attribution compares only fingerprints
of the current version, so such a model is compared with nothing until it is fingerprinted
again; or when that scan could not compare a registered base (fingerprinted by an older
version only) that has been fingerprinted again since. Registered lineage bases come first,
since every other model is compared with them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from verifier import __version__, config
from verifier.lineage.fingerprint import FINGERPRINT_VERSION
from verifier.service.model import JobStatus, RescanCause, Rescanner, RescanState, ScanJob
from verifier.sources.huggingface.kept import not_kept_reason
from verifier.store.service_records import NewestScan

if TYPE_CHECKING:
    from verifier.service.core import Service


def scanned_by_older(recorded: str, running: Version) -> bool:
    """Whether a scan recorded by verifier `recorded` was made by a version older than
    `running` (PEP 440 order: 0.10 is after 0.9, 1.0rc1 before 1.0).

    A newer version is never older: during a rolling upgrade a server still at the older
    version leaves alone what a newer one recorded (else two servers would re-scan each
    other's scans in turn). A recorded version that does not parse counts as older (fail
    closed): nothing says that scanner knew what this one knows, and the re-scan records a
    version that parses, so it happens once.
    """
    try:
        return Version(recorded) < running
    except InvalidVersion:
        return True


def scanned_by_newer(recorded: str, running: Version) -> bool:
    """Whether a scan recorded by verifier `recorded` was made by a version newer than
    `running` (one that does not parse is older: `scanned_by_older`)."""
    try:
        return Version(recorded) > running
    except InvalidVersion:
        return False


def fingerprinted_now(
    scans: Mapping[str, NewestScan], *, fingerprint_version: int = FINGERPRINT_VERSION
) -> frozenset[str]:
    """The recorded Hub models, as `repo_id@commit` in lower case (the labels of
    `NewestScan.older_version_bases`), whose newest scan is complete and recorded a weight
    fingerprint of `fingerprint_version`: a scan made now compares them."""
    return frozenset(
        subject.removeprefix("hf://").lower()
        for subject, newest in scans.items()
        if newest.complete and newest.fingerprint_version == fingerprint_version
    )


def rescan_need(
    newest: NewestScan,
    running: Version,
    *,
    fingerprinted: Collection[str],
    fingerprint_version: int = FINGERPRINT_VERSION,
) -> tuple[RescanCause, ...]:
    """Why the model whose newest recorded scan is `newest` needs a re-scan by verifier
    `running` computing fingerprints of `fingerprint_version` (empty: it needs none), the
    models in `fingerprinted` having a newest scan with a fingerprint of that version
    (`fingerprinted_now` of every recorded model's newest scan).

    A fingerprint of a newer version is left alone, as a scan by a newer verifier is.

    Cause `lineage`: the scan is complete with a fingerprint of this version, was not made by
    a newer verifier, and names a registered base it could not compare (fingerprinted only by
    an older version then) that is in `fingerprinted` now. Any such base is enough: a base
    whose re-scan is held (bytes not kept) must not hold back the comparison with those
    re-fingerprinted, and the upkeep pass lets no derivative be queued while a base's re-scan
    is under way, so after an upgrade a derivative is re-scanned once, after its bases. It
    cannot loop: the new scan compares that base and no longer names it, so it needs another
    only once another base it names is fingerprinted again (at most once per base), and each
    newest scan is asked for once (`asked_since`).
    """
    causes = []
    if scanned_by_older(newest.tool_version, running):
        causes.append(RescanCause.SCANNER)
    printed = newest.fingerprint_version
    if newest.complete and printed is not None and printed < fingerprint_version:
        causes.append(RescanCause.FINGERPRINT)
    if (
        newest.complete
        and printed == fingerprint_version
        and not scanned_by_newer(newest.tool_version, running)
        and any(base.lower() in fingerprinted for base in newest.older_version_bases)
    ):
        causes.append(RescanCause.LINEAGE)
    return tuple(causes)


def asked_since(job: ScanJob | None, newest: NewestScan) -> bool:
    """Whether the re-scanner asked for `job` (its newest job of the model) since the model's
    newest scan started: a re-scan is asked once per newest scan and re-scanner, whatever
    became of it (a failed one is not asked again). A job asked before the newest scan is
    for an earlier scan: a model re-scanned by this verifier version, and whose fingerprint
    version has moved since (a later build of the same version), is asked for again."""
    if job is None:
        return False
    if newest.started_at is None:
        return True
    return datetime.fromisoformat(job.created_at) >= newest.started_at


def rescan_order(scans: Mapping[str, NewestScan]) -> list[tuple[str, NewestScan]]:
    """The models in the order re-scans are asked for: registered lineage bases first (every
    other model is attributed against them), then by target."""
    return sorted(scans.items(), key=lambda item: (not item[1].registered_base, item[0]))


def hold_reason(service: Service, scan_id: str, *, home: Path) -> str | None:
    """Why a re-scan of the recorded scan `scan_id` from kept bytes is held (its bytes are not
    all kept in the folder under `home` or the service's shared store), or None.

    Raises:
        StoreError: The database cannot be reached or read.
    """
    previous = service.store.get_scan(scan_id)
    return not_kept_reason(previous, home=home, blob_store=service.blob_store)


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
    #: Why it needs a re-scan (empty once done), the version of the fingerprint its newest
    #: scan recorded, and whether that is a registered lineage base.
    causes: tuple[RescanCause, ...] = ()
    fingerprint_version: int | None = None
    registered_base: bool = False

    def document(self) -> dict[str, Any]:
        """The JSON form (one entry of `rescans`)."""
        return {
            "target": self.target,
            "state": self.state.value,
            "tool_version": self.tool_version,
            "scan_id": self.scan_id,
            "job": self.job,
            "reason": self.reason,
            "causes": [cause.value for cause in self.causes],
            "fingerprint_version": self.fingerprint_version,
            "registered_base": self.registered_base,
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
    """Examine, in `rescan_order`, up to `limit` recorded Hub models that need a re-scan
    (`rescan_need`) or that this version's re-scanner asked for, and say where each re-scan
    stands (only those in `state`, when given). `truncated`: more were left.

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
        scans = service.records.scanner_versions()
        fingerprinted = fingerprinted_now(scans)
        for subject, newest in rescan_order(scans):
            job = jobs.get(subject)
            causes = rescan_need(newest, running, fingerprinted=fingerprinted)
            if causes and not asked_since(job, newest):
                job = None  # asked for an earlier scan: this one still waits (or is held)
            if not causes and (job is None or job.status is not JobStatus.COMPLETE):
                continue  # nothing to re-scan, or scanned by this version otherwise
            if examined >= limit:
                truncated = True
                break
            examined += 1
            entry = _entry(service, subject, newest, job, causes=causes, home=home)
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
    causes: tuple[RescanCause, ...],
    home: Path,
) -> RescanEntry:
    """Where one model's re-scan stands (see `RescanState`)."""
    base: dict[str, Any] = {
        "target": subject,
        "tool_version": newest.tool_version,
        "scan_id": newest.scan_id,
        "causes": causes,
        "fingerprint_version": newest.fingerprint_version,
        "registered_base": newest.registered_base,
    }
    if job is not None:
        if job.open:
            return RescanEntry(state=RescanState.QUEUED, job=job.job_id, **base)
        if job.status is JobStatus.FAILED:
            return RescanEntry(state=RescanState.FAILED, job=job.job_id, reason=job.error, **base)
        return RescanEntry(state=RescanState.DONE, job=job.job_id, **base)
    reason = None
    if causes and not service.config.rescan_from_hub:
        reason = hold_reason(service, newest.scan_id, home=home)
    held = reason is not None
    return RescanEntry(
        state=RescanState.HELD if held else RescanState.WAITING, reason=reason, **base
    )
