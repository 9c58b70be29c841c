"""The one place that sequences a scan: walk -> hash and scan (one read) -> decide -> record."""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from verifier import __version__, config
from verifier.bans import BanHit, BanLookup
from verifier.errors import ScanAbortedError, TargetError, VerifierError
from verifier.facts import details_from_notes
from verifier.fetch import FetchOptions, Progress, fetch_and_scan
from verifier.hashing import ChunkObserver, HashingReader
from verifier.lockfile import LockedModel, drift
from verifier.manifest import check_cache_blob, declared_digest_matches
from verifier.model import (
    Decision,
    DeclaredFile,
    FileFormat,
    FileResult,
    Finding,
    Lineage,
    ModelDetails,
    Provenance,
    ScanReport,
    ScanStatus,
    Severity,
    SignatureResult,
    SignatureStatus,
    SourceType,
    Verdict,
    VerifiedLineage,
)
from verifier.policy import Policy, build_evidence, decide
from verifier.policy.schema import Mode
from verifier.printable import record_name
from verifier.scanners.budget import DecompressionBudget, ScanBudget
from verifier.scanners.interface import ScanContext, ScanLimitError, ScanStream
from verifier.scanners.references import identify_referenced
from verifier.scanners.registry import scanner_for
from verifier.scanners.remote_code import python_file_finding
from verifier.scanners.sniff import identify
from verifier.signatures import check as signature_check
from verifier.signatures.interface import (
    DEFAULT_SIGNATURE_NAME,
    MAX_SIGNATURE_BYTES,
    SignatureRequest,
)
from verifier.sources.hub_provenance import build_provenance, hub_lineage, lineage_findings
from verifier.sources.huggingface import (
    HubModel,
    HubSettings,
    HubSource,
    MissingEntryError,
    OversizeError,
    is_hub_target,
    parse_hub_target,
)
from verifier.sources.local import LocalFile, LocalTree, open_regular, walk

log = logging.getLogger(__name__)

#: Bytes of a file's start used to identify its format.
HEAD_SIZE = 65536
#: Findings kept per file: a scanner that yields more is stopped (FINDINGS-CAPPED).
MAX_FINDINGS_PER_FILE = 1_000
#: Findings kept per scan, over all files: the rest are dropped (FINDINGS-CAPPED).
MAX_FINDINGS_PER_SCAN = 10_000

_PICKLE_FAMILY = frozenset({FileFormat.PICKLE, FileFormat.PYTORCH_ZIP, FileFormat.PYTORCH_LEGACY})
#: `joblib.dump(obj, "model.pkl", compress=...)` writes a compressed stream under a pickle's name.
#: Its content is scanned, and a pickle loader given the raw bytes must stop at once: the
#: compressed scanner refuses the file (CONTAINER-AMBIGUOUS) when it would read on.
_PICKLE_OR_JOBLIB = _PICKLE_FAMILY | {FileFormat.COMPRESSED}
#: Names whose loaders are chosen by extension: content that does not fit is misparsed or hostile.
EXPECTED_BY_NAME: dict[str, frozenset[FileFormat]] = {
    ".safetensors": frozenset({FileFormat.SAFETENSORS}),
    ".gguf": frozenset({FileFormat.GGUF}),
    ".npy": frozenset({FileFormat.NUMPY}),
    ".npz": frozenset({FileFormat.NUMPY_NPZ, FileFormat.ZIP}),
    ".pkl": _PICKLE_OR_JOBLIB,
    ".pickle": _PICKLE_OR_JOBLIB,
    ".pt": _PICKLE_FAMILY,
    ".pth": _PICKLE_FAMILY,
    ".ckpt": _PICKLE_FAMILY,
    ".onnx": frozenset({FileFormat.ONNX}),
    ".h5": frozenset({FileFormat.HDF5}),
    ".hdf5": frozenset({FileFormat.HDF5}),
    ".json": frozenset({FileFormat.JSON}),
}


def name_mismatch(path: str, fmt: FileFormat) -> Finding | None:
    """A finding when a file's name promises a format its content does not have."""
    suffix = os.path.splitext(path)[1].lower()
    expected = EXPECTED_BY_NAME.get(suffix)
    if expected is None or fmt in expected or fmt is FileFormat.EMPTY:
        return None
    return Finding(
        "FORMAT-MISMATCH",
        Severity.HIGH,
        f"named like a {suffix} file but its content is {fmt.value}: a loader that trusts "
        "the name would misparse it",
        file=path,
    )


class ScanRecorder(Protocol):
    """Where finished and failed scans are recorded (the store, or a fake in tests)."""

    def record_scan(self, report: ScanReport) -> None: ...

    def record_failed_scan(
        self,
        *,
        scan_id: str,
        target: str,
        started_at: str,
        finished_at: str,
        tool_version: str,
        error: str,
    ) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _unreadable(path: str, reason: str) -> FileResult:
    finding = Finding(
        "FILE-UNREADABLE",
        Severity.CRITICAL,
        f"file could not be read: {reason}",
        file=path,
    )
    return FileResult(
        path=path,
        size=0,
        sha256=None,
        git_sha1=None,
        format=FileFormat.UNKNOWN,
        findings=(finding,),
        complete=False,
    )


def scan_stream(
    stream: ScanStream, path: str, head: bytes, *, scan_budget: ScanBudget | None = None
) -> tuple[FileFormat, list[Finding], dict[str, Any]]:
    """Identify a file by its first bytes and run its scanner over `stream` (read forward once).

    The file may decompress what its size allows, and no more than is left of `scan_budget`
    (shared by the files of one scan). Returns the format, the findings, and the facts the
    scanner noted.
    """
    fmt = identify(head, stream.size)
    notes: dict[str, Any] = {}
    budget = DecompressionBudget.for_file(stream.size, scan=scan_budget)
    ctx = ScanContext(path=path, format=fmt, notes=notes, budget=budget)
    findings = _run_scanner(stream, ctx)
    if (mismatch := name_mismatch(path, fmt)) is not None:
        findings.append(mismatch)
    if (python := python_file_finding(path)) is not None:
        findings.append(python)
    return fmt, findings, notes


def scan_file(
    entry: LocalFile,
    *,
    git_sha1: bool = False,
    observers: Sequence[ChunkObserver] = (),
    scan_budget: ScanBudget | None = None,
) -> FileResult:
    """Read one file once: identify it, run its scanner, and hash every byte on the way.

    `observers` compute the extra digests a signature asks for in the same pass;
    `scan_budget` is what the scan may still decompress.
    """
    try:
        fd, size = open_regular(entry.location)
    except OSError as exc:
        return _unreadable(entry.path, exc.strerror or str(exc))
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # larger read-ahead
        reader = HashingReader(
            fd, size=size, git_sha1=git_sha1, observers=observers, location=entry.location
        )
        try:
            fmt, findings, notes = scan_stream(
                reader, entry.path, reader.peek(HEAD_SIZE), scan_budget=scan_budget
            )
            digests = reader.drain()
        except OSError as exc:
            return _unreadable(entry.path, exc.strerror or str(exc))
    finally:
        os.close(fd)
    complete = digests.size == size and digests.changed is None
    if not complete:
        what = digests.changed or f"it was {size} bytes when opened but {digests.size} were read"
        findings.append(
            Finding(
                "FILE-CHANGED-DURING-SCAN",
                Severity.CRITICAL,
                f"file changed during the scan: {what}; its digest may not be what is on disk",
                file=entry.path,
            )
        )
    return FileResult(
        path=entry.path,
        size=digests.size,
        sha256=digests.sha256,
        git_sha1=digests.git_sha1,
        format=fmt,
        findings=tuple(findings),
        complete=complete,
        notes=notes,
        extra_digests=digests.extra,
    )


def _read_signature(location: str) -> bytes:
    fd, _ = open_regular(location)
    try:
        chunks = []
        total = 0
        while total <= MAX_SIGNATURE_BYTES and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def prepare_signature(
    tree: LocalTree, request: SignatureRequest
) -> signature_check.PreparedSignature | None:
    """Find the signature (the given path, or model.sig at the root) and verify its envelope.

    Only the signature is read here (kilobytes); the model's bytes wait for the one pass.

    Raises:
        TargetError: a signature path was given and cannot be read.
    """
    if request.signature_path is not None:
        location = os.path.realpath(request.signature_path)
        inside = os.path.relpath(location, tree.root)
        self_path = inside if any(f.location == location for f in tree.files) else None
        display = request.signature_path
    else:
        entry = next((f for f in tree.files if f.path == DEFAULT_SIGNATURE_NAME), None)
        if entry is None:
            return None
        location, self_path, display = entry.location, entry.path, entry.path
    try:
        raw = _read_signature(location)
    except OSError as exc:
        if request.signature_path is not None:
            raise TargetError(
                f"cannot read signature {request.signature_path}: {exc.strerror or exc}"
            ) from None
        return signature_check.PreparedSignature(
            display,
            self_path,
            SignatureStatus.INVALID,
            f"signature cannot be read: {exc.strerror or exc}",
        )
    return signature_check.prepare(raw, path=display, self_path=self_path, request=request)


def prepare_hub_signature(
    source: HubSource, model: HubModel, request: SignatureRequest
) -> signature_check.PreparedSignature | None:
    """The signature of a Hub model: the given file, or the `model.sig` the commit declares.

    A declared signature is fetched at the pinned commit and used only when its bytes match
    the declared digest; otherwise it is invalid (and the fetch reports the mismatch too).

    Raises:
        TargetError: a signature path was given and cannot be read.
        SourceError: the Hub could not be reached.
    """
    if request.signature_path is not None:
        try:
            raw = _read_signature(os.path.realpath(request.signature_path))
        except OSError as exc:
            raise TargetError(
                f"cannot read signature {request.signature_path}: {exc.strerror or exc}"
            ) from None
        return signature_check.prepare(
            raw, path=str(request.signature_path), self_path=None, request=request
        )
    declared = next((d for d in model.files if d.path == DEFAULT_SIGNATURE_NAME), None)
    if declared is None:
        return None

    def invalid(reason: str) -> signature_check.PreparedSignature:
        return signature_check.PreparedSignature(
            declared.path, declared.path, SignatureStatus.INVALID, reason
        )

    if declared.size > MAX_SIGNATURE_BYTES:
        return invalid(f"signature is {declared.size} bytes, over {MAX_SIGNATURE_BYTES}")
    sink = io.BytesIO()
    try:
        source.download(model.pinned, declared, sink)
    except (OversizeError, MissingEntryError) as exc:
        return invalid(f"signature could not be fetched: {exc}")
    raw = sink.getvalue()
    if not declared_digest_matches(declared, raw):
        return invalid("the signature's bytes do not match the digest the commit declares")
    return signature_check.prepare(
        raw, path=declared.path, self_path=declared.path, request=request
    )


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


def _run_scanner(reader: ScanStream, ctx: ScanContext) -> list[Finding]:
    scanner = scanner_for(ctx.format)
    if scanner is None:
        return [
            ctx.finding(
                "FORMAT-NOT-SCANNED",
                Severity.HIGH,
                f"no scanner reads {ctx.format.value} files, so this file was not checked",
            )
        ]
    findings: list[Finding] = []
    try:
        for finding in scanner.scan(reader, ctx):
            if len(findings) == MAX_FINDINGS_PER_FILE:
                findings.append(
                    ctx.finding(
                        "FINDINGS-CAPPED",
                        Severity.CRITICAL,
                        f"more than {MAX_FINDINGS_PER_FILE} findings in this file: the scanner "
                        "was stopped, so the rest of the file was not checked",
                    )
                )
                break
            findings.append(finding)
    except ScanLimitError as exc:
        findings.append(ctx.finding("SCAN-LIMIT", Severity.HIGH, f"scan stopped: {exc}"))
    except OSError:
        raise
    except Exception as exc:
        # A scanner that breaks on hostile input must not pass the file: the scan is marked
        # incomplete (never allowed) and the failure is named, so it can be fixed.
        log.debug("scanner crashed on %s", ctx.path, exc_info=True)
        findings.append(
            ctx.finding(
                "SCANNER-ERROR",
                Severity.CRITICAL,
                f"the {ctx.format.value} scanner failed on this file ({type(exc).__name__}: "
                f"{exc}); it was not fully checked",
            )
        )
    return findings


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


@dataclass(frozen=True)
class HubOptions:
    """How to reach a Hub and what to fetch from it (for `hf://` targets)."""

    endpoint: str | None = None
    token: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    metadata_only: bool = False
    lineage: bool = True
    #: The lockfile entry to check the model against (drift is a LOCK-DRIFT finding).
    locked: LockedModel | None = None


@contextmanager
def _failures_recorded(
    recorder: ScanRecorder | None, policy: Policy, scan_id: str, target: str, started: str
) -> Iterator[None]:
    """Record a scan that breaks as failed (never allowed), then let the error through."""
    try:
        yield
    except BaseException as exc:
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


def verified_blobs(files: Sequence[FileResult]) -> dict[str, str]:
    """Where the store keeps each fully verified file of a Hub scan, by path."""
    from verifier.sources.quarantine import verified_blob

    home = config.home_dir()
    return {
        f.path: str(verified_blob(home, f.sha256))
        for f in files
        if f.sha256 is not None and f.complete and not f.findings
    }


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

    See `verifier.lineage.verify`; imported here so that scans without weights stay light.
    """
    from verifier.lineage.verify import References, verified_lineage_findings, verify_lineage

    repo_id, publisher = _lineage_subject(source, target)
    references = recorder if isinstance(recorder, References) else None
    lineage = verify_lineage(
        files,
        locations,
        repo_id=repo_id,
        publisher=publisher,
        declared=_declared_bases(provenance, details),
        references=references,
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
    bans = (
        recorder.bans_reaching(report, publishers=policy.publishers)
        if isinstance(recorder, BanLookup)
        else ()
    )
    report = decide_report(report, policy, bans=bans)
    if recorder is not None and policy.mode is not Mode.DRY_RUN:
        with _failures_recorded(recorder, policy, scan_id, target, started):
            recorder.record_scan(report)
    return report


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
) -> ScanReport:
    """Scan a local path or a Hub model (`hf://ns/name[@rev]`), decide, and record.

    Raises:
        TargetError: the target does not exist or cannot be parsed.
        SourceError: the Hub could not be reached or refused a request.
        StoreError: the result could not be recorded.
    """
    if is_hub_target(target):
        return scan_hub(
            target,
            policy=policy,
            recorder=recorder,
            options=hub or HubOptions(),
            workers=workers,
            progress=progress,
            signature=signature,
        )
    return scan_target(
        target,
        policy=policy,
        recorder=recorder,
        workers=workers,
        on_file=on_file,
        signature=signature,
    )


def scan_hub(
    target: str,
    *,
    policy: Policy,
    recorder: ScanRecorder | None,
    options: HubOptions,
    workers: int | None = None,
    progress: Progress | None = None,
    signature: SignatureRequest | None = None,
) -> ScanReport:
    """Resolve a Hub model to its commit, fetch and verify its files, scan, decide, record.

    A signature (`--signature`, or a `model.sig` the repository declares, fetched and checked
    against its declared digest first) is verified against the files in the same pass.

    Raises:
        TargetError: the target is not a model reference.
        SourceError: the Hub could not be reached or refused a request.
        StoreError: the result could not be recorded.
    """
    ref = parse_hub_target(target)
    source = HubSource(HubSettings.from_env(endpoint=options.endpoint, token=options.token))
    model = source.resolve(ref)
    scan_id = uuid.uuid4().hex
    started = _now()
    request = signature or SignatureRequest()
    prepared = prepare_hub_signature(source, model, request)
    # Reused files lack the extra digests a signature may ask for: read everything again.
    known = getattr(recorder, "verified_file", None) if prepared is None else None
    with _failures_recorded(recorder, policy, scan_id, target, started):
        fetched = fetch_and_scan(
            source,
            model,
            home=config.home_dir(),
            scan_id=scan_id,
            options=FetchOptions(
                include=options.include,
                exclude=options.exclude,
                metadata_only=options.metadata_only,
                workers=workers,
            ),
            known=known if callable(known) else None,
            progress=progress,
            observers_for=lambda path: signature_check.observers_for(prepared, path),
        )
        lineage = hub_lineage(source, model) if options.lineage else Lineage()
        provenance = build_provenance(model.pinned, model.info, lineage)
        findings = (*fetched.findings, *lineage_findings(lineage))
        if options.locked is not None:
            findings += tuple(drift(options.locked, model.pinned.commit, fetched.files))
        if not model.files:
            findings += (
                Finding("TARGET-EMPTY", Severity.HIGH, "the target holds no file to verify"),
            )
        signature_result, signature_findings = _signature_result(
            prepared, request, fetched.files, declared=model.files
        )
        findings += tuple(signature_findings)
    pinned = model.pinned
    return _finish(
        scan_id=scan_id,
        target=target,
        started=started,
        files=fetched.files,
        findings=tuple(findings),
        policy=policy,
        recorder=recorder,
        source={
            "type": SourceType.HUGGINGFACE.value,
            "repo_id": pinned.repo_id,
            "revision_requested": pinned.revision_requested,
            "commit": pinned.commit,
            "endpoint": pinned.endpoint,
        },
        incomplete=fetched.incomplete,
        provenance=provenance,
        declared=model.files,
        signature=signature_result,
        locations=None if options.metadata_only else verified_blobs(fetched.files),
    )


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
    """Scan a local file or folder, check its signature, decide with `policy`, and record.

    Raises:
        TargetError: the target (or a signature path given) does not exist or is unreadable.
        StoreError: the result could not be recorded.
    """
    tree = walk(target)
    target = record_name(target)  # a path given on the command line may not be UTF-8
    request = signature or SignatureRequest()
    prepared = prepare_signature(tree, request)

    in_cache = tree.hf_cache_repo is not None

    budget = ScanBudget()

    def one_file(entry: LocalFile) -> FileResult:
        observers = signature_check.observers_for(prepared, entry.path)
        return scan_file(entry, git_sha1=in_cache, observers=observers, scan_budget=budget)

    scan_id = uuid.uuid4().hex
    started = _now()
    files = []
    with (
        _failures_recorded(recorder, policy, scan_id, target, started),
        ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool,
    ):
        for result in pool.map(one_file, tree.files):
            files.append(result)
            if on_file is not None:
                on_file(result)
    scan_findings = list(tree.findings)
    source = {"type": SourceType.LOCAL.value, "root": record_name(tree.root)}
    if tree.hf_cache_repo is not None:
        # The cache names each blob by the digest the Hub declared when it was downloaded.
        blobs = {f.path: os.path.basename(f.location) for f in tree.files}
        scan_findings += [
            finding
            for result in files
            for finding in check_cache_blob(result, blobs.get(result.path, ""))
        ]
        source["hf_cache_repo"] = tree.hf_cache_repo
    if not tree.files:
        scan_findings.append(
            Finding("TARGET-EMPTY", Severity.HIGH, "the target holds no file to verify")
        )
    signature_result, signature_findings = _signature_result(prepared, request, tuple(files))
    scan_findings += signature_findings
    return _finish(
        scan_id=scan_id,
        target=target,
        started=started,
        files=tuple(files),
        findings=tuple(scan_findings),
        policy=policy,
        recorder=recorder,
        source=source,
        signature=signature_result,
        locations={entry.path: entry.location for entry in tree.files},
    )
