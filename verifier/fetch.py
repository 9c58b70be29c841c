"""Verified fetch from a Hub: download into quarantine, read once (scan + hash), compare, promote.

Files are fetched in parallel; each is scanned and hashed as soon as it has landed, while the
others are still downloading, so the read after landing overlaps the network.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from verifier.hashing import CHUNK_SIZE, ChunkObserver, FileStamp, file_change
from verifier.manifest import check_file, compare_listings
from verifier.metadata_only import metadata_result
from verifier.model import DeclaredFile, FileFormat, FileResult, Finding, Severity
from verifier.scanners.budget import ScanBudget
from verifier.sources.huggingface import (
    Downloaded,
    HubModel,
    HubSource,
    MissingEntryError,
    OversizeError,
)
from verifier.sources.local import LocalFile, open_regular
from verifier.sources.quarantine import Quarantine, path_escape_reason

log = logging.getLogger(__name__)

#: Downloads running at once (as `snapshot_download` does by default).
DEFAULT_DOWNLOAD_WORKERS = 8


class Progress(Protocol):
    """Where byte counts go while files arrive (a progress bar, or nothing)."""

    def add_total(self, n: int) -> None: ...

    def advance(self, n: int) -> None: ...


class NoProgress:
    """Progress that shows nothing."""

    def add_total(self, n: int) -> None:
        """Ignore."""

    def advance(self, n: int) -> None:
        """Ignore."""


#: Looks up a file already verified and scanned with these declared digests, if any.
KnownFile = Callable[[DeclaredFile], FileResult | None]


@dataclass(frozen=True)
class FetchOptions:
    """What to fetch: glob filters, and whether to download at all."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    metadata_only: bool = False
    workers: int | None = None


@dataclass(frozen=True)
class FetchResult:
    """Files read (or described, with metadata only) and findings about the fetch itself."""

    files: tuple[FileResult, ...]
    findings: tuple[Finding, ...]
    incomplete: bool


def selected(path: str, options: FetchOptions) -> bool:
    """Whether `path` passes the --include / --exclude globs."""
    if options.include and not any(fnmatch.fnmatchcase(path, g) for g in options.include):
        return False
    return not any(fnmatch.fnmatchcase(path, g) for g in options.exclude)


#: The extra digests (ChunkObservers) a signature needs for a path, computed in the same pass.
ObserversFor = Callable[[str], Sequence[ChunkObserver]]


class LandedReader:
    """A forward stream over a landed download whose bytes were hashed as they arrived.

    Scanners get the same `ScanStream` as for local files, but nothing is hashed again and the
    parts a scanner skips (a safetensors file's tensor data) are not read at all.
    """

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def read(self, n: int) -> bytes:
        if n <= 0:
            return b""
        parts = []
        while n > 0 and self._pos < self._size:
            chunk = os.pread(self._fd, min(n, CHUNK_SIZE), self._pos)
            if not chunk:
                break
            parts.append(chunk)
            self._pos += len(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def skip(self, n: int) -> int:
        step = max(0, min(n, self._size - self._pos))
        self._pos += step
        return step

    def read_at(self, offset: int, n: int) -> bytes:
        if offset < 0 or n <= 0:
            return b""
        return os.pread(self._fd, n, offset)


def _scan_landed(
    declared: DeclaredFile,
    location: Path,
    downloaded: Downloaded,
    observers_for: ObserversFor | None,
    scan_budget: ScanBudget,
) -> FileResult:
    from verifier.pipeline import HEAD_SIZE, scan_file, scan_stream  # shared with local scans

    entry = LocalFile(path=declared.path, location=str(location))
    observers = observers_for(declared.path) if observers_for is not None else ()
    if observers:
        # A signature asks for more digests: read everything once more, computing them all.
        return scan_file(
            entry, git_sha1=not declared.lfs, observers=observers, scan_budget=scan_budget
        )
    try:
        fd, size = open_regular(entry.location)
    except OSError as exc:
        return _unreadable_landed(declared.path, exc)
    try:
        stamp = FileStamp.of(os.fstat(fd))
        reader = LandedReader(fd, size)
        head = os.pread(fd, HEAD_SIZE, 0)
        fmt, findings, notes = scan_stream(reader, declared.path, head, scan_budget=scan_budget)
        changed = file_change(fd, stamp, location=entry.location)
    except OSError as exc:
        return _unreadable_landed(declared.path, exc)
    finally:
        os.close(fd)
    if changed is not None:  # the bytes scanned may not be the bytes the download hashed
        findings.append(
            Finding(
                "FILE-CHANGED-DURING-SCAN",
                Severity.CRITICAL,
                f"file changed during the scan: {changed}",
                file=declared.path,
            )
        )
    return FileResult(
        path=declared.path,
        size=downloaded.size,
        sha256=downloaded.sha256,
        git_sha1=downloaded.git_sha1,
        format=fmt,
        findings=tuple(findings),
        complete=size == downloaded.size and changed is None,
        notes=notes,
    )


def _unreadable_landed(path: str, exc: OSError) -> FileResult:
    finding = Finding(
        "FILE-UNREADABLE",
        Severity.CRITICAL,
        f"the downloaded file could not be read back: {exc.strerror or exc}",
        file=path,
    )
    return FileResult(path, 0, None, None, FileFormat.UNKNOWN, (finding,), complete=False)


def _fetch_one(
    source: HubSource,
    model: HubModel,
    declared: DeclaredFile,
    quarantine: Quarantine,
    progress: Progress,
    observers_for: ObserversFor | None,
    scan_budget: ScanBudget,
) -> tuple[FileResult | None, list[Finding]]:
    pinned = model.pinned
    try:
        served = source.served_commit(pinned, declared.path)
    except MissingEntryError:
        return None, [_missing(declared.path)]
    if served is not None and served != pinned.commit:
        return None, [
            Finding(
                "HF-COMMIT-MISMATCH",
                Severity.CRITICAL,
                "the Hub served this file from another commit than the one pinned",
                file=declared.path,
                evidence=f"pinned {pinned.commit}, served {served}",
            )
        ]
    landed = quarantine.path_for(declared.path)
    try:
        with open(landed, "x+b") as sink:
            downloaded = source.download(pinned, declared, sink, on_bytes=progress.advance)
    except MissingEntryError:
        quarantine.discard(landed)
        return None, [_missing(declared.path)]
    except OversizeError as exc:
        quarantine.discard(landed)
        return None, [
            Finding(
                "HF-SIZE-MISMATCH",
                Severity.CRITICAL,
                f"download refused: {exc}",
                file=declared.path,
                evidence=f"declared {declared.size}",
            )
        ]
    result = _scan_landed(declared, landed, downloaded, observers_for, scan_budget)
    problems = check_file(declared, result) if result.complete else []
    if problems or not result.complete or result.sha256 is None:
        quarantine.discard(landed)  # nothing unverified leaves quarantine
    else:
        quarantine.promote(landed, result.sha256)
    if problems:
        result = dataclasses.replace(result, findings=(*result.findings, *problems))
    return result, []


def _missing(path: str) -> Finding:
    return Finding(
        "HF-MISSING-FILE",
        Severity.CRITICAL,
        "a declared file is not served at the pinned commit",
        file=path,
    )


def _reuse(declared: DeclaredFile, known: FileResult) -> FileResult:
    return dataclasses.replace(
        known,
        path=declared.path,
        findings=tuple(f.with_file(declared.path) for f in known.findings),
    )


def fetch_and_scan(
    source: HubSource,
    model: HubModel,
    *,
    home: Path,
    scan_id: str,
    options: FetchOptions,
    known: KnownFile | None = None,
    progress: Progress | None = None,
    observers_for: ObserversFor | None = None,
) -> FetchResult:
    """Fetch the declared files of the pinned commit, verify each, and scan what verified.

    Raises:
        SourceError: the Hub could not be reached or refused a request (not a missing file).
    """
    progress = progress or NoProgress()
    findings: list[Finding] = list(compare_listings(model.files, model.listed))
    wanted: list[DeclaredFile] = []
    excluded = 0
    for declared in model.files:
        reason = path_escape_reason(declared.path)
        if reason is not None:
            findings.append(
                Finding(
                    "HF-PATH-ESCAPE",
                    Severity.CRITICAL,
                    f"declared path refused ({reason}): it could write outside the quarantine",
                    file=declared.path,
                )
            )
        elif selected(declared.path, options):
            wanted.append(declared)
        else:
            excluded += 1
    if excluded:
        findings.append(
            Finding(
                "HF-FILES-EXCLUDED",
                Severity.MEDIUM,
                f"{excluded} declared file(s) left out by --include/--exclude were not checked",
            )
        )
    if options.metadata_only:
        return _metadata_only(source, model, wanted, findings)
    results: list[FileResult] = []
    to_fetch: list[DeclaredFile] = []
    # In digest order: a `known` that holds each blob until its scan is recorded (the
    # service's jobs, verifier.service.jobs.JobRecorder) takes them in one order in every job,
    # so two jobs never wait on each other.
    for declared in sorted(wanted, key=lambda d: (d.sha256 or "", d.path)):
        # Only LFS files (the weights) are reused: small git files are cheap to fetch again and
        # carry the facts (config, card) scanners note on each read.
        previous = known(declared) if known is not None and declared.lfs else None
        # Reused only while the store still holds the verified bytes: `pull` places from there,
        # and a file recorded by a local scan (or a store cleared since) was never kept in it.
        if previous is not None and _stored(home, previous):
            results.append(_reuse(declared, previous))
        else:
            to_fetch.append(declared)
    progress.add_total(sum(d.size for d in to_fetch))
    quarantine = Quarantine(home, scan_id)
    budget = ScanBudget()  # what the files of this scan may decompress, together
    try:
        workers = options.workers or DEFAULT_DOWNLOAD_WORKERS
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(to_fetch) or 1))) as pool:
            futures = [
                pool.submit(
                    _fetch_one, source, model, d, quarantine, progress, observers_for, budget
                )
                for d in to_fetch
            ]
            try:
                for future in futures:
                    result, problems = future.result()
                    findings.extend(problems)
                    if result is not None:
                        results.append(result)
            except BaseException:
                # The scan fails as a whole: do not start the downloads still waiting.
                for future in futures:
                    future.cancel()
                raise
    finally:
        quarantine.close()
    results.sort(key=lambda r: r.path)
    return FetchResult(files=tuple(results), findings=tuple(findings), incomplete=False)


def _stored(home: Path, result: FileResult) -> bool:
    """Whether the store under `home` holds a regular file for `result`'s verified digest."""
    if result.sha256 is None:
        return False
    try:
        return stat.S_ISREG(os.lstat(blob_location(home, result.sha256)).st_mode)
    except OSError:
        return False


def _metadata_only(
    source: HubSource,
    model: HubModel,
    wanted: Sequence[DeclaredFile],
    findings: list[Finding],
) -> FetchResult:
    results = [metadata_result(source, model.pinned, d) for d in wanted]
    findings.append(
        Finding(
            "METADATA-ONLY",
            Severity.HIGH,
            f"--metadata-only: {len(wanted)} file(s) were not downloaded, so their digests were "
            "not verified and their contents (pickle code, archives) were not scanned; only "
            "declared digests and safetensors headers were read",
        )
    )
    return FetchResult(files=tuple(results), findings=tuple(findings), incomplete=True)


def blob_location(home: Path, sha256: str) -> str:
    """Where the content-addressed store keeps verified bytes with this sha256."""
    return os.fspath(home / "blobs" / "sha256" / sha256[:2] / sha256)
