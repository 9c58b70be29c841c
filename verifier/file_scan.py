"""One file's bytes read once: hashed by the one reader, identified, scanned by the one dispatch.

Every source hands its files here as `Arrival`s (see `verifier.sources.interface`): a local
file, a file of an HF cache snapshot, a Hub download landed in quarantine. The one reader
hashes every byte the scanners read or skip, and the rest when they are done, exactly once:
no source hashes bytes on its own, so the digests are always of the bytes that were scanned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from verifier.hashing import ChunkObserver, HashingReader
from verifier.model import FileFormat, FileResult, Finding, Severity
from verifier.scanners.budget import DecompressionBudget, ScanBudget
from verifier.scanners.interface import ScanContext, ScanLimitError, ScanStream
from verifier.scanners.registry import scanner_for
from verifier.scanners.sniff import identify
from verifier.sources.interface import Arrival
from verifier.sources.local import LocalArrival, LocalFile

log = logging.getLogger(__name__)

#: Bytes of a file's start used to identify its format.
HEAD_SIZE = 65536
#: Findings kept per file: a scanner that yields more is stopped (FINDINGS-CAPPED).
MAX_FINDINGS_PER_FILE = 1_000

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


def unreadable(path: str, reason: str) -> FileResult:
    """The result for a file whose bytes could not be read: incomplete, never allowed."""
    finding = Finding("FILE-UNREADABLE", Severity.CRITICAL, reason, file=path)
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
    if os.path.splitext(path)[1].lower() == ".py":
        # Only then: the remote-code module brings the Jinja and Python analysers with it.
        from verifier.scanners.remote_code import python_file_finding

        if (python := python_file_finding(path)) is not None:
            findings.append(python)
    return fmt, findings, notes


def read_arrival(
    arrival: Arrival,
    *,
    observers: Sequence[ChunkObserver] = (),
    scan_budget: ScanBudget | None = None,
) -> FileResult:
    """Read one arrived file once: identify it, scan it, hash it, and let its source settle it.

    `observers` compute the extra digests a signature asks for in the same pass.
    `scan_budget` is what the scan may still decompress.
    """
    path = arrival.entry.path
    try:
        fd, size = arrival.open()
    except OSError as exc:
        return unreadable(path, f"{arrival.unreadable_reason}: {exc.strerror or exc}")
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # larger read-ahead
        reader = HashingReader(
            fd,
            size=size,
            git_sha1=arrival.git_sha1,
            observers=observers,
            location=arrival.location,
        )
        try:
            fmt, findings, notes = scan_stream(
                reader, path, reader.peek(HEAD_SIZE), scan_budget=scan_budget
            )
            digests = reader.drain()
        except OSError as exc:
            return unreadable(path, f"{arrival.unreadable_reason}: {exc.strerror or exc}")
    finally:
        os.close(fd)
    complete = digests.size == size and digests.changed is None
    if not complete:
        what = digests.changed or f"it was {size} bytes when opened but {digests.size} were read"
        findings.append(_changed(path, f"{what}; its digest may not be what is on disk"))
    result = FileResult(
        path=path,
        size=digests.size,
        sha256=digests.sha256,
        git_sha1=digests.git_sha1,
        format=fmt,
        findings=tuple(findings),
        complete=complete,
        notes=notes,
        extra_digests=digests.extra,
    )
    return arrival.settle(result)


def _changed(path: str, what: str) -> Finding:
    return Finding(
        "FILE-CHANGED-DURING-SCAN",
        Severity.CRITICAL,
        f"file changed during the scan: {what}",
        file=path,
    )


def scan_file(
    entry: LocalFile,
    *,
    git_sha1: bool = False,
    observers: Sequence[ChunkObserver] = (),
    scan_budget: ScanBudget | None = None,
) -> FileResult:
    """Read one local file once (see `read_arrival`): the path tests and tools use directly."""
    arrival = LocalArrival.of(entry, git_sha1=git_sha1)
    return read_arrival(arrival, observers=observers, scan_budget=scan_budget)


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
