"""The one place that sequences a scan: resolve -> read each file once -> decide -> record.

Every source (a local folder or file, an HF cache snapshot, a Hub model) is a
`verifier.sources.interface.Source`, built from the target by `verifier.sources.targets`;
every file it delivers is read by the one per-file path, `verifier.file_scan.read_arrival`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from verifier import __version__
from verifier.bans import BAN_RECHECKS, BanHit
from verifier.errors import BansChangedError, ScanAbortedError, TargetError, VerifierError
from verifier.facts import details_from_notes
from verifier.file_scan import (
    HEAD_SIZE,
    MAX_FINDINGS_PER_FILE,
    name_mismatch,
    read_arrival,
    scan_file,
    scan_stream,
)
from verifier.lineage.verify import verified_lineage_findings, verify_lineage
from verifier.model import (
    Decision,
    DeclaredFile,
    FileResult,
    Finding,
    ModelDetails,
    Provenance,
    ScanReport,
    ScanStatus,
    Severity,
    SignatureResult,
    SignatureStatus,
    Verdict,
    VerifiedLineage,
)
from verifier.policy import Policy, build_evidence, decide
from verifier.policy.compiled import Mode
from verifier.scanners.budget import ScanBudget
from verifier.scanners.references import identify_referenced
from verifier.signatures import check as signature_check
from verifier.signatures.interface import (
    DEFAULT_SIGNATURE_NAME,
    MAX_SIGNATURE_BYTES,
    SignatureRequest,
)
from verifier.sources.interface import (
    TARGET_EMPTY,
    Arrival,
    NoProgress,
    Progress,
    Ready,
    Refused,
    SideFileError,
    Snapshot,
    SnapshotFile,
    Source,
    VerifiedFiles,
)
from verifier.sources.local import read_capped
from verifier.sources.targets import HubOptions, SourceSettings, open_source
from verifier.store.interface import ScanRecorder

if TYPE_CHECKING:
    from verifier.lockfile import LockedModel

__all__ = [
    "HEAD_SIZE",
    "MAX_FINDINGS_PER_FILE",
    "MAX_FINDINGS_PER_SCAN",
    "UNDECIDED",
    "HubOptions",
    "cap_findings",
    "decide_report",
    "name_mismatch",
    "run_scan",
    "scan_file",
    "scan_source",
    "scan_stream",
    "scan_target",
]

log = logging.getLogger(__name__)

#: Findings kept per scan, over all files: the rest are dropped (FINDINGS-CAPPED).
MAX_FINDINGS_PER_SCAN = 10_000


def _now() -> str:
    return datetime.now(UTC).isoformat()


def prepare_signature(
    source: Source, snapshot: Snapshot, request: SignatureRequest
) -> signature_check.PreparedSignature | None:
    """Find the signature (the given path, or the snapshot's model.sig) and verify its envelope.

    Only the signature is read here (kilobytes), once; the model's bytes wait for the one pass.

    Raises:
        TargetError: a signature path was given and cannot be read.
        SourceError: a remote source could not be reached.
    """
    if request.signature_path is not None:
        location = os.path.realpath(request.signature_path)
        inside = next((f for f in snapshot.files if f.location == location), None)
        try:
            raw = read_capped(location, limit=MAX_SIGNATURE_BYTES)
        except OSError as exc:
            raise TargetError(
                f"cannot read signature {request.signature_path}: {exc.strerror or exc}"
            ) from None
        return signature_check.prepare(
            raw,
            path=str(request.signature_path),
            self_path=inside.path if inside is not None else None,
            request=request,
        )
    entry = _declared_signature(snapshot)
    if entry is None:
        return None
    try:
        raw = source.read_side_file(snapshot, entry, limit=MAX_SIGNATURE_BYTES)
    except SideFileError as exc:
        return signature_check.PreparedSignature(
            entry.path, entry.path, SignatureStatus.INVALID, f"signature {exc}"
        )
    return signature_check.prepare(raw, path=entry.path, self_path=entry.path, request=request)


def _declared_signature(snapshot: Snapshot) -> SnapshotFile | None:
    """The snapshot's `model.sig`, even when --include/--exclude left it out of the files read."""
    entry = next((f for f in snapshot.files if f.path == DEFAULT_SIGNATURE_NAME), None)
    if entry is None and snapshot.declared is not None:
        declared = next((d for d in snapshot.declared if d.path == DEFAULT_SIGNATURE_NAME), None)
        entry = SnapshotFile(declared.path, declared=declared) if declared is not None else None
    return entry


def _signature_result(
    prepared: signature_check.PreparedSignature | None,
    request: SignatureRequest,
    files: tuple[FileResult, ...],
    *,
    declared: Sequence[DeclaredFile] = (),
) -> tuple[SignatureResult, list[Finding]]:
    result = (
        signature_check.absent(request)
        if prepared is None
        else signature_check.conclude(prepared, files, declared=declared)
    )
    return result, signature_check.findings_for(result, request)


def _is_incomplete(files: tuple[FileResult, ...], findings: tuple[Finding, ...]) -> bool:
    return any(not f.complete for f in files) or any(
        f.code in ("FILE-UNREADABLE", "SCANNER-ERROR", "FINDINGS-CAPPED") for f in findings
    )


def cap_findings(
    files: tuple[FileResult, ...], findings: tuple[Finding, ...]
) -> tuple[tuple[FileResult, ...], tuple[Finding, ...]]:
    """At most `MAX_FINDINGS_PER_SCAN` findings, in order, then one that says how many went."""
    total = len(findings) + sum(len(r.findings) for r in files)
    if total <= MAX_FINDINGS_PER_SCAN:
        return files, findings
    budget = MAX_FINDINGS_PER_SCAN
    kept_scan = findings[:budget]
    budget -= len(kept_scan)
    kept_files = []
    for result in files:
        kept = result.findings[: max(budget, 0)]
        budget -= len(kept)
        kept_files.append(replace(result, findings=kept) if kept != result.findings else result)
    summary = Finding(
        "FINDINGS-CAPPED",
        Severity.CRITICAL,
        f"{total} findings, over the cap of {MAX_FINDINGS_PER_SCAN} per scan: "
        f"{total - MAX_FINDINGS_PER_SCAN} were not recorded",
    )
    return tuple(kept_files), (*kept_scan, summary)


@contextmanager
def _failures_recorded(
    recorder: ScanRecorder | None,
    policy: Policy,
    scan_id: str,
    target: str,
    started: str,
    *,
    retry: bool = False,
) -> Iterator[None]:
    """Record a scan that breaks as failed (never allowed), then let the error through.

    With `retry`, a `BansChangedError` goes through unrecorded: the scan is decided again.
    """
    try:
        yield
    except BaseException as exc:
        if retry and isinstance(exc, BansChangedError):
            raise
        # Record the failure first, so an interrupted or broken scan reads as failed, never allowed.
        if recorder is not None and policy.mode is not Mode.DRY_RUN:
            recorder.record_failed_scan(
                scan_id=scan_id,
                target=target,
                started_at=started,
                finished_at=_now(),
                tool_version=__version__,
                error=f"{type(exc).__name__}: {exc}",
            )
        if isinstance(exc, Exception) and not isinstance(exc, VerifierError):
            raise ScanAbortedError(
                f"scan {scan_id} aborted ({type(exc).__name__}: {exc}); recorded as failed"
            ) from exc
        raise


def _attribute(
    files: tuple[FileResult, ...], findings: tuple[Finding, ...]
) -> tuple[tuple[FileResult, ...], tuple[Finding, ...]]:
    """Move findings about a file that was read into that file's own findings."""
    paths = {r.path for r in files}
    extra: dict[str, list[Finding]] = {}
    rest = []
    for finding in findings:
        if finding.file in paths:
            extra.setdefault(finding.file, []).append(finding)
        else:
            rest.append(finding)
    if not extra:
        return files, findings
    moved = tuple(
        dataclasses.replace(r, findings=(*r.findings, *extra[r.path])) if r.path in extra else r
        for r in files
    )
    return moved, tuple(rest)


def _declared_bases(provenance: Provenance | None, details: ModelDetails) -> list[str]:
    """The bases the source declares at every depth, else those the card's `base_model` names.

    The same reading as `verifier.facts.ancestors`: a source that recorded provenance is
    believed about lineage, the card is read only when there is no source record.
    """
    if provenance is not None:
        ancestors = [*provenance.base_models, *(e.parent for e in provenance.lineage.edges)]
        return list(dict.fromkeys(ancestors))
    bases = details.card.metadata.get("base_model") if details.card is not None else None
    if isinstance(bases, str):
        return [bases]
    return [b for b in bases if isinstance(b, str)] if isinstance(bases, list) else []


def _lineage_subject(source: Mapping[str, str], target: str) -> tuple[str, str | None]:
    """The name and publisher lineage records a model under: Hub repo, cache repo, or target."""
    repo_id = source.get("repo_id")
    cache = source.get("hf_cache_repo")
    if not repo_id and cache:
        # `.../models--<namespace>--<name>`: the Hub writes `/` as `--` in cache folder names.
        namespace, _, name = os.path.basename(cache).removeprefix("models--").partition("--")
        repo_id = f"{namespace}/{name}" if name else None
    if not repo_id:
        return target, None
    return repo_id, repo_id.split("/", 1)[0] if "/" in repo_id else None


def _verify_lineage(
    files: tuple[FileResult, ...],
    locations: Mapping[str, str],
    *,
    source: Mapping[str, str],
    target: str,
    provenance: Provenance | None,
    details: ModelDetails,
    recorder: ScanRecorder | None,
) -> tuple[VerifiedLineage, tuple[Finding, ...]]:
    """Lineage from the weights against what the store recorded, and its findings.

    See `verifier.lineage.verify` (light: it loads the fingerprinting code only for weights).
    """
    repo_id, publisher = _lineage_subject(source, target)
    lineage = verify_lineage(
        files,
        locations,
        repo_id=repo_id,
        publisher=publisher,
        declared=_declared_bases(provenance, details),
        references=recorder,
    )
    return lineage, verified_lineage_findings(lineage)


def _finish(
    *,
    scan_id: str,
    target: str,
    started: str,
    files: tuple[FileResult, ...],
    findings: tuple[Finding, ...],
    policy: Policy,
    recorder: ScanRecorder | None,
    source: dict[str, str],
    incomplete: bool = False,
    provenance: Provenance | None = None,
    declared: tuple[DeclaredFile, ...] | None = None,
    signature: SignatureResult | None = None,
    locations: Mapping[str, str] | None = None,
) -> ScanReport:
    """Verify lineage, decide with the policy and record: the same for every source.

    `locations` says where each scanned file can be read again (the folder, or the store of
    verified blobs) for the weight fingerprint; None when nothing can be (metadata only).
    """
    # The extra digests served the signature check; the report keeps SHA-256 (and git SHA-1).
    files = tuple(replace(f, extra_digests=()) if f.extra_digests else f for f in files)
    files = identify_referenced(files)
    details = details_from_notes(files)
    verified_lineage, lineage_problems = _verify_lineage(
        files,
        locations or {},
        source=source,
        target=target,
        provenance=provenance,
        details=details,
        recorder=recorder,
    )
    findings = (*findings, *lineage_problems)
    files, findings = cap_findings(*_attribute(files, findings))
    all_findings = findings + tuple(f for r in files for f in r.findings)
    status = (
        ScanStatus.INCOMPLETE
        if incomplete or _is_incomplete(files, all_findings)
        else ScanStatus.COMPLETE
    )
    report = ScanReport(
        scan_id=scan_id,
        target=target,
        started_at=started,
        finished_at=_now(),
        tool_version=__version__,
        status=status,
        files=files,
        findings=all_findings,
        verdict=UNDECIDED,
        source=source,
        provenance=provenance,
        declared_files=declared,
        details=details,
        signature=signature,
        verified_lineage=verified_lineage,
    )
    if recorder is None:
        return decide_report(report, policy, bans=())
    for attempt in range(1, BAN_RECHECKS + 1):
        # The generation first: a ban made after it is caught when recording, never missed.
        seen = recorder.ban_generation()
        bans = recorder.bans_reaching(report, publishers=policy.publishers)
        decided = decide_report(report, policy, bans=bans)
        if policy.mode is Mode.DRY_RUN:
            return decided
        last = attempt == BAN_RECHECKS
        try:
            with _failures_recorded(recorder, policy, scan_id, target, started, retry=not last):
                recorder.record_scan(decided, bans_seen=seen)
        except BansChangedError:
            if last:
                raise
            continue  # a ban was made or lifted meanwhile: decide again with it
        return decided
    raise AssertionError("unreachable: the last attempt returns or raises")


def run_scan(
    target: str,
    *,
    policy: Policy,
    recorder: ScanRecorder | None,
    workers: int | None = None,
    hub: HubOptions | None = None,
    progress: Progress | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    signature: SignatureRequest | None = None,
    settings: SourceSettings | None = None,
) -> ScanReport:
    """Scan a local path or a Hub model (`hf://ns/name[@rev]`), decide, and record.

    The source is built by `verifier.sources.targets.open_source`; see `scan_source` (and
    what `recorder`, or None, looks up).

    Raises:
        TargetError: the target does not exist or cannot be parsed.
        SourceError: the Hub could not be reached or refused a request.
        StoreError: the result could not be recorded.
    """
    hub = hub or HubOptions()
    return scan_source(
        open_source(target, hub=hub, settings=settings),
        policy=policy,
        recorder=recorder,
        workers=workers,
        progress=progress,
        on_file=on_file,
        signature=signature,
        locked=hub.locked,
    )


def scan_source(
    source: Source,
    *,
    policy: Policy,
    recorder: ScanRecorder | None,
    workers: int | None = None,
    progress: Progress | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    signature: SignatureRequest | None = None,
    locked: LockedModel | None = None,
) -> ScanReport:
    """Resolve `source` once, read every file it delivers once, check the signature, decide, record.

    A signature (`--signature`, or a `model.sig` the snapshot holds, read once) is verified
    against the files in the same pass. `locked` is the lockfile entry to check against (drift
    is a LOCK-DRIFT finding).

    `recorder` is where the scan is recorded and what it looks up first, every time: the files
    verified before by digest (not fetched again; unless a signature needs their bytes), the
    fingerprints verified lineage compares with, and the bans in force that reach the model
    (`verifier.store.interface.ScanRecorder`). None records nothing and looks up nothing: no
    ban reaches the decision and lineage compares with no recorded model.

    Raises:
        TargetError: the target (or a signature path given) does not exist or is unreadable.
        SourceError: a remote source could not be reached or refused a request.
        StoreError: the result could not be recorded.
    """
    snapshot = source.resolve()
    target = snapshot.target
    request = signature or SignatureRequest()
    prepared = prepare_signature(source, snapshot, request)
    scan_id = uuid.uuid4().hex
    started = _now()
    # Reused files lack the extra digests a signature may ask for: read everything again.
    known = recorder if prepared is None else None
    with _failures_recorded(recorder, policy, scan_id, target, started):
        read = _read_files(
            source,
            snapshot,
            scan_id=scan_id,
            known=known,
            progress=progress or NoProgress(),
            workers=workers,
            on_file=on_file,
            prepared=prepared,
        )
        facts = source.facts(snapshot)
        findings = [*snapshot.findings, *read.findings, *facts.findings]
        if locked is not None and snapshot.pinned is not None:
            from verifier.lockfile import drift  # only for a scan checked against a lockfile

            findings += drift(locked, snapshot.pinned.commit, read.files)
        if snapshot.empty:
            findings.append(TARGET_EMPTY)
        signature_result, signature_findings = _signature_result(
            prepared, request, read.files, declared=snapshot.declared or ()
        )
        findings += signature_findings
    return _finish(
        scan_id=scan_id,
        target=target,
        started=started,
        files=read.files,
        findings=tuple(findings),
        policy=policy,
        recorder=recorder,
        source=dict(snapshot.record),
        incomplete=read.incomplete,
        provenance=facts.provenance,
        declared=snapshot.declared,
        signature=signature_result,
        locations=source.locations(snapshot, read.files),
    )


@dataclasses.dataclass(frozen=True)
class _FilesRead:
    files: tuple[FileResult, ...]
    findings: tuple[Finding, ...]
    incomplete: bool


_WEIGHT_SUFFIXES = (".safetensors", ".gguf")
"""Names of the files verified lineage fingerprints (a hint for `_prefetch_lineage` only: what
is fingerprinted is decided by content, after the read)."""


def _prefetch_lineage() -> None:
    """Import the code verified lineage runs (numpy, its random generators, the fingerprint and
    the comparisons: about 60 ms of processor time) on a reader thread while the weights are
    still being hashed, where a scan of a small model would otherwise wait for it after the read
    (docs/lineage.md). Only a head start: a failed import fails again, and is reported, where
    lineage imports it."""
    with suppress(ImportError):
        import verifier.lineage.attribution
        import verifier.lineage.fingerprint  # noqa: F401

        # numpy loads `numpy.random` on first use only (the key's unit selectors use it); after
        # `verifier.lineage`, which keeps numpy's BLAS to one thread when it comes first.
        importlib.import_module("numpy.random")


def _read_files(
    source: Source,
    snapshot: Snapshot,
    *,
    scan_id: str,
    known: VerifiedFiles | None,
    progress: Progress,
    workers: int | None,
    on_file: Callable[[FileResult], None] | None,
    prepared: signature_check.PreparedSignature | None,
) -> _FilesRead:
    """Every file the source delivers, each read by the one per-file path as it arrives."""
    budget = ScanBudget()  # what the files of this scan may decompress, together

    def read(arrival: Arrival) -> FileResult:
        observers = signature_check.observers_for(prepared, arrival.entry.path)
        return read_arrival(arrival, observers=observers, scan_budget=budget)

    results: list[FileResult] = []
    refused: list[Finding] = []
    futures: list[Future[FileResult]] = []
    prefetched = False
    with (
        source.session(
            snapshot, scan_id=scan_id, known=known, progress=progress, workers=workers
        ) as session,
        ThreadPoolExecutor(max_workers=workers or source.default_workers) as pool,
    ):
        try:
            for item in session.arrivals():
                if isinstance(item, Ready):
                    results.append(item.result)
                elif isinstance(item, Refused):
                    refused.append(item.finding)
                else:
                    futures.append(pool.submit(read, item))
                    if not prefetched and item.entry.path.lower().endswith(_WEIGHT_SUFFIXES):
                        prefetched = True
                        pool.submit(_prefetch_lineage)
            for future in futures:
                result = future.result()
                results.append(result)
                if on_file is not None:
                    on_file(result)
        except BaseException:
            # The scan fails as a whole: do not start the reads still waiting.
            for future in futures:
                future.cancel()
            raise
        findings = (*refused, *session.findings)
        incomplete = session.incomplete
    results.sort(key=lambda r: r.path)
    return _FilesRead(files=tuple(results), findings=findings, incomplete=incomplete)


#: The verdict a report carries until `decide_report` decides it: denied.
UNDECIDED = Verdict(
    decision=Decision.DENY, policy_name="(undecided)", policy_digest="", mode="enforce"
)


def decide_report(
    report: ScanReport,
    policy: Policy,
    *,
    now: datetime | None = None,
    bans: Sequence[BanHit] = (),
) -> ScanReport:
    """`report` decided by `policy` over the evidence its facts give; every scan path calls it.

    `bans` are the bans in force that reach the model (each denies it).

    Raises:
        PolicyError: a `when:` expression raised while evaluating (nothing is recorded).
    """
    moment = now or datetime.now(UTC)
    evidence = build_evidence(report, publishers=policy.publishers, now=moment, bans=bans)
    return replace(report, verdict=decide(evidence, policy, now=moment))


def scan_target(
    target: str,
    *,
    policy: Policy,
    recorder: ScanRecorder | None,
    workers: int | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    signature: SignatureRequest | None = None,
) -> ScanReport:
    """Scan a local file or folder (or HF cache snapshot), check its signature, decide, record.

    Raises:
        TargetError: the target (or a signature path given) does not exist or is unreadable.
        StoreError: the result could not be recorded.
    """
    return scan_source(
        open_source(target),
        policy=policy,
        recorder=recorder,
        workers=workers,
        on_file=on_file,
        signature=signature,
    )
