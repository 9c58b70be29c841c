"""The one place that sequences a scan: walk -> hash and scan (one read) -> decide -> record."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from verifier import __version__
from verifier.errors import ScanAbortedError, TargetError, VerifierError
from verifier.hashing import ChunkObserver, HashingReader
from verifier.model import (
    Decision,
    FileFormat,
    FileResult,
    Finding,
    ScanReport,
    ScanStatus,
    Severity,
    SignatureResult,
    SignatureStatus,
    Verdict,
)
from verifier.policy import Policy, build_evidence, decide
from verifier.policy.schema import Mode
from verifier.report.json_format import facts_document
from verifier.scanners.interface import ScanContext, ScanLimitError
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify
from verifier.signatures import check as signature_check
from verifier.signatures.interface import (
    DEFAULT_SIGNATURE_NAME,
    MAX_SIGNATURE_BYTES,
    SignatureRequest,
)
from verifier.sources.local import LocalFile, LocalTree, open_regular, walk

log = logging.getLogger(__name__)

#: Bytes of a file's start used to identify its format.
HEAD_SIZE = 65536

_PICKLE_FAMILY = frozenset({FileFormat.PICKLE, FileFormat.PYTORCH_ZIP, FileFormat.PYTORCH_LEGACY})
#: Names whose loaders are chosen by extension: content that does not fit is misparsed or hostile.
EXPECTED_BY_NAME: dict[str, frozenset[FileFormat]] = {
    ".safetensors": frozenset({FileFormat.SAFETENSORS}),
    ".gguf": frozenset({FileFormat.GGUF}),
    ".npy": frozenset({FileFormat.NUMPY}),
    ".npz": frozenset({FileFormat.NUMPY_NPZ, FileFormat.ZIP}),
    ".pkl": _PICKLE_FAMILY,
    ".pickle": _PICKLE_FAMILY,
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


def scan_file(
    entry: LocalFile, *, git_sha1: bool = False, observers: Sequence[ChunkObserver] = ()
) -> FileResult:
    """Read one file once: identify it, run its scanner, and hash every byte on the way.

    `observers` compute the extra digests a signature asks for in the same pass.
    """
    try:
        fd, size = open_regular(entry.location)
    except OSError as exc:
        return _unreadable(entry.path, exc.strerror or str(exc))
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # larger read-ahead
        reader = HashingReader(fd, size=size, git_sha1=git_sha1, observers=observers)
        try:
            fmt = identify(reader.peek(HEAD_SIZE), size)
            notes: dict[str, Any] = {}
            ctx = ScanContext(path=entry.path, format=fmt, notes=notes)
            findings = _run_scanner(reader, ctx)
            if (mismatch := name_mismatch(entry.path, fmt)) is not None:
                findings.append(mismatch)
            digests = reader.drain()
        except OSError as exc:
            return _unreadable(entry.path, exc.strerror or str(exc))
    finally:
        os.close(fd)
    complete = digests.size == size
    if not complete:
        findings.append(
            Finding(
                "FILE-CHANGED-DURING-SCAN",
                Severity.CRITICAL,
                f"file was {size} bytes when opened but {digests.size} bytes were read",
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
        extra_digests=digests.extra,
        notes=notes,
    )


def _read_signature(location: str) -> bytes:
    fd, size = open_regular(location)
    try:
        if size > MAX_SIGNATURE_BYTES:
            return os.read(fd, MAX_SIGNATURE_BYTES + 1)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > MAX_SIGNATURE_BYTES:
                break
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


def model_details(files: Sequence[FileResult]) -> dict[str, Any]:
    """The scan's model facts document from what scanners noted (see `scanners.facts`)."""
    details: dict[str, Any] = {}
    weights: dict[str, Any] = {}
    for result in files:
        if "config" in result.notes:
            details["config"] = result.notes["config"]
        if "card" in result.notes:
            details["card"] = result.notes["card"]
        if result.notes.get("safetensors") is not None:
            weights[result.path] = result.notes["safetensors"]
    if weights:
        details["safetensors"] = dict(sorted(weights.items()))
    return details


def _run_scanner(reader: HashingReader, ctx: ScanContext) -> list[Finding]:
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
        findings.extend(scanner.scan(reader, ctx))
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


def _attach(
    files: tuple[FileResult, ...], findings: Sequence[Finding], scan_findings: list[Finding]
) -> tuple[FileResult, ...]:
    """Give each finding about a scanned file to that file; the others go to the scan."""
    by_path: dict[str, list[Finding]] = {}
    paths = {f.path for f in files}
    for finding in findings:
        if finding.file in paths:
            by_path.setdefault(finding.file, []).append(finding)
        else:
            scan_findings.append(finding)
    # The extra digests served the signature check; the report keeps SHA-256 (and git SHA-1).
    return tuple(
        replace(f, findings=f.findings + tuple(by_path.get(f.path, ())), extra_digests=())
        for f in files
    )


def _is_incomplete(files: tuple[FileResult, ...], findings: tuple[Finding, ...]) -> bool:
    return any(not f.complete for f in files) or any(
        f.code in ("FILE-UNREADABLE", "SCANNER-ERROR") for f in findings
    )


#: The verdict a report carries until `decide_report` decides it: denied.
UNDECIDED = Verdict(
    decision=Decision.DENY, policy_name="(undecided)", policy_digest="", mode="enforce"
)


def decide_report(report: ScanReport, policy: Policy, *, now: datetime | None = None) -> ScanReport:
    """`report` decided by `policy` over the evidence its facts give; every scan path calls it.

    Raises:
        PolicyError: a `when:` expression raised while evaluating (nothing is recorded).
    """
    moment = now or datetime.now(UTC)
    evidence = build_evidence(facts_document(report), publishers=policy.publishers, now=moment)
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
    request = signature or SignatureRequest()
    prepared = prepare_signature(tree, request)
    scan_id = uuid.uuid4().hex
    started = _now()

    def one_file(entry: LocalFile) -> FileResult:
        observers = signature_check.observers_for(prepared, entry.path)
        return scan_file(entry, observers=observers) if observers else scan_file(entry)

    try:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
            files = []
            for result in pool.map(one_file, tree.files):
                files.append(result)
                if on_file is not None:
                    on_file(result)
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
    scan_findings = list(tree.findings)
    if not tree.files:
        scan_findings.append(
            Finding("TARGET-EMPTY", Severity.HIGH, "the target holds no file to verify")
        )
    file_results = tuple(files)
    signature_result: SignatureResult = (
        signature_check.absent(request)
        if prepared is None
        else signature_check.conclude(prepared, file_results)
    )
    file_results = _attach(
        file_results, signature_check.findings_for(signature_result, request), scan_findings
    )
    all_findings = tuple(scan_findings) + tuple(f for r in file_results for f in r.findings)
    status = (
        ScanStatus.INCOMPLETE if _is_incomplete(file_results, all_findings) else ScanStatus.COMPLETE
    )
    report = ScanReport(
        scan_id=scan_id,
        target=target,
        started_at=started,
        finished_at=_now(),
        tool_version=__version__,
        status=status,
        files=file_results,
        findings=all_findings,
        verdict=UNDECIDED,
        source={"type": "local", "root": tree.root},
        signature=signature_result,
        details=model_details(file_results),
    )
    report = decide_report(report, policy)
    if recorder is not None and policy.mode is not Mode.DRY_RUN:
        recorder.record_scan(report)
    return report
