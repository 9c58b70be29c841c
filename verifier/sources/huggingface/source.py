"""The Hub behind the Source seam: pin once, download into quarantine, settle after the scan.

Files are fetched in parallel; each is handed to the scan as soon as it has landed, while the
others are still downloading, so the one read (and hash) of each landed file overlaps the
network. Only a file whose bytes match the declared digest leaves quarantine, for the
content-addressed store.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import io
import logging
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from verifier.blobs.folder import HostFolder
from verifier.blobs.interface import BlobStore
from verifier.blobs.local import restore, share, take, take_from
from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    Lineage,
    ModelRef,
    Severity,
    SourceType,
)
from verifier.sources.huggingface.client import (
    HubClient,
    HubModel,
    MissingEntryError,
    OversizeError,
    write_capped,
)
from verifier.sources.huggingface.manifest import (
    check_file,
    compare_listings,
    declared_digest_matches,
)
from verifier.sources.huggingface.metadata_only import metadata_result
from verifier.sources.huggingface.provenance import build_provenance, hub_lineage, lineage_findings
from verifier.sources.interface import (
    Arrival,
    Progress,
    Ready,
    Refused,
    SideFileError,
    Snapshot,
    SnapshotFile,
    SourceFacts,
    VerifiedFiles,
)
from verifier.sources.local import open_regular
from verifier.sources.quarantine import Quarantine, path_escape_reason, verified_blob

log = logging.getLogger(__name__)

#: Downloads running at once (as `snapshot_download` does by default).
DEFAULT_DOWNLOAD_WORKERS = 8


def selected(path: str, *, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether `path` passes the --include / --exclude globs."""
    if include and not any(fnmatch.fnmatchcase(path, g) for g in include):
        return False
    return not any(fnmatch.fnmatchcase(path, g) for g in exclude)


@dataclass(frozen=True)
class HubArrival:
    """A download landed in quarantine, to be read (and hashed) once by the scan's reader."""

    entry: SnapshotFile
    landed: Path
    quarantine: Quarantine
    #: The blob store shared with other hosts, where verified files are put (None: none).
    blob_store: BlobStore | None = None
    unreadable_reason: str = field(default="the downloaded file could not be read back", init=False)

    @property
    def location(self) -> str:
        """Where the download landed."""
        return str(self.landed)

    @property
    def git_sha1(self) -> bool:
        """Files outside LFS are declared by their git blob id."""
        return self.entry.declared is not None and not self.entry.declared.lfs

    def open(self) -> tuple[int, int]:
        """Open the landed bytes.

        Raises:
            OSError: they are gone or unreadable.
        """
        return open_regular(self.location)

    def settle(self, result: FileResult) -> FileResult:
        """Compare with the declared size and digest; promote verified bytes, discard the rest."""
        assert self.entry.declared is not None  # every Hub file is declared
        problems = check_file(self.entry.declared, result) if result.complete else []
        if problems or not result.complete or result.sha256 is None:
            self.quarantine.discard(self.landed)  # nothing unverified leaves quarantine
        else:
            if self.blob_store is not None:
                # Every verified file, small git files too (under the SHA-256 the scan just
                # measured), so that a re-scan from kept bytes works on any host sharing the
                # store. The bytes put are those the scan hashed, not a copy the folder may
                # already hold under that name.
                share(self.blob_store, result.sha256, self.landed)
            self.quarantine.promote(self.landed, result.sha256)
        if problems:
            result = dataclasses.replace(result, findings=(*result.findings, *problems))
        return result


class HubSource:
    """One Hub model: resolved to a commit once, its declared files fetched and verified."""

    default_workers = DEFAULT_DOWNLOAD_WORKERS

    def __init__(
        self,
        target: str,
        ref: ModelRef,
        *,
        client: HubClient,
        home: Path,
        include: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        metadata_only: bool = False,
        lineage: bool = True,
        blob_store: BlobStore | None = None,
    ) -> None:
        self._target = target
        #: Verified weights shared with other hosts: taken before the Hub is asked, put after.
        self.blob_store = blob_store
        self._ref = ref
        self.client = client
        self.home = home
        self._include = include
        self._exclude = exclude
        self._metadata_only = metadata_only
        self._lineage = lineage
        self._model: HubModel | None = None
        #: Side files read before the session, by path: their bytes arrive once.
        self._side_files: dict[str, bytes] = {}

    @property
    def model(self) -> HubModel:
        """What resolution established.

        Raises:
            RuntimeError: the source was not resolved yet.
        """
        if self._model is None:
            raise RuntimeError("resolve() the Hub source first")
        return self._model

    def resolve(self) -> Snapshot:
        """Pin the revision to a commit and list what it declares; refuse unsafe paths.

        Raises:
            SourceError: the Hub refused or could not answer.
        """
        model = self._model = self.client.resolve(self._ref)
        findings: list[Finding] = list(compare_listings(model.files, model.listed))
        wanted: list[SnapshotFile] = []
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
            elif selected(declared.path, include=self._include, exclude=self._exclude):
                wanted.append(SnapshotFile(declared.path, declared=declared))
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
        pinned = model.pinned
        return Snapshot(
            target=self._target,
            record={
                "type": SourceType.HUGGINGFACE.value,
                "repo_id": pinned.repo_id,
                "revision_requested": pinned.revision_requested,
                "commit": pinned.commit,
                "endpoint": pinned.endpoint,
            },
            files=tuple(wanted),
            findings=tuple(findings),
            pinned=pinned,
            declared=model.files,
        )

    def read_side_file(self, snapshot: Snapshot, entry: SnapshotFile, *, limit: int) -> bytes:
        """Fetch a small declared file at the pinned commit, once, and check its digest.

        The bytes are kept for the session: when the file is scanned with the others it is
        not downloaded again.

        Raises:
            SideFileError: too large, not served, or not the bytes the commit declares.
            SourceError: the Hub could not be reached.
        """
        declared = entry.declared
        if declared is None or snapshot.pinned is None:
            raise SideFileError("is not declared by the commit")
        if declared.size > limit:
            raise SideFileError(f"is {declared.size} bytes, over {limit}")
        sink = io.BytesIO()
        try:
            self.client.download(snapshot.pinned, declared, sink)
        except (OversizeError, MissingEntryError) as exc:
            raise SideFileError(f"could not be fetched: {exc}") from None
        raw = sink.getvalue()
        self._side_files[declared.path] = raw
        if not declared_digest_matches(declared, raw):
            # The file's own scan reports the mismatch too (HF-DIGEST-MISMATCH).
            raise SideFileError("bytes do not match the digest the commit declares")
        return raw

    @contextmanager
    def session(
        self,
        snapshot: Snapshot,
        *,
        scan_id: str,
        known: VerifiedFiles | None,
        progress: Progress,
        workers: int | None,
    ) -> Iterator[HubSession]:
        """Downloads into this scan's quarantine, removed when the session ends."""
        quarantine = None if self._metadata_only else Quarantine(self.home, scan_id)
        try:
            yield HubSession(
                self,
                snapshot,
                quarantine=quarantine,
                known=known,
                progress=progress,
                workers=workers or DEFAULT_DOWNLOAD_WORKERS,
            )
        finally:
            if quarantine is not None:
                quarantine.close()

    def facts(self, snapshot: Snapshot) -> SourceFacts:
        """Provenance from the model info, and the declared lineage pinned (unless turned off).

        Raises:
            SourceError: the Hub could not be reached.
        """
        model = self.model
        lineage = hub_lineage(self.client, model) if self._lineage else Lineage()
        provenance = build_provenance(model.pinned, model.info, lineage)
        return SourceFacts(provenance=provenance, findings=tuple(lineage_findings(lineage)))

    def locations(
        self, snapshot: Snapshot, files: Sequence[FileResult]
    ) -> Mapping[str, str] | None:
        """Where the store keeps each fully verified file (nothing with metadata only)."""
        if self._metadata_only:
            return None
        return {
            f.path: str(verified_blob(self.home, f.sha256))
            for f in files
            if f.sha256 is not None and f.complete and not f.findings
        }

    def fetch(
        self,
        declared: DeclaredFile,
        quarantine: Quarantine,
        progress: Progress,
        *,
        recorded_sha256: str | None = None,
    ) -> HubArrival | Refused:
        """Bring one declared file at the pinned commit into quarantine (see `HubSession`):
        from this host's folder of verified blobs, else the shared blob store, else the Hub.

        `recorded_sha256` is the SHA-256 an earlier scan measured of a file outside LFS with
        the declared git blob id (such a file declares no SHA-256 to look it up by).

        Raises:
            SourceError: the Hub could not be reached or refused a request (not a missing file).
        """
        entry = SnapshotFile(declared.path, declared=declared)
        kept = take_kept(
            self.home,
            self.blob_store,
            declared,
            quarantine,
            recorded_sha256=recorded_sha256,
            progress=progress,
        )
        if kept is not None:
            return kept
        pinned = self.model.pinned
        try:
            served = self.client.served_commit(pinned, declared.path)
        except MissingEntryError:
            return Refused(_missing(declared.path))
        if served is not None and served != pinned.commit:
            return Refused(
                Finding(
                    "HF-COMMIT-MISMATCH",
                    Severity.CRITICAL,
                    "the Hub served this file from another commit than the one pinned",
                    file=declared.path,
                    evidence=f"pinned {pinned.commit}, served {served}",
                )
            )
        landed = quarantine.path_for(declared.path)
        side = self._side_files.get(declared.path)
        try:
            with open(landed, "x+b") as sink:
                if side is not None:
                    write_capped(sink, declared, side, on_bytes=progress.advance)
                else:
                    self.client.download(pinned, declared, sink, on_bytes=progress.advance)
        except MissingEntryError:
            quarantine.discard(landed)
            return Refused(_missing(declared.path))
        except OversizeError as exc:
            quarantine.discard(landed)
            return Refused(
                Finding(
                    "HF-SIZE-MISMATCH",
                    Severity.CRITICAL,
                    f"download refused: {exc}",
                    file=declared.path,
                    evidence=f"declared {declared.size}",
                )
            )
        return HubArrival(entry, landed, quarantine, self.blob_store)


def take_kept(
    home: Path,
    blob_store: BlobStore | None,
    declared: DeclaredFile,
    quarantine: Quarantine,
    *,
    recorded_sha256: str | None,
    progress: Progress,
) -> HubArrival | None:
    """A declared file's verified bytes kept before, here (the folder under `home`) or by
    another host (`blob_store`), brought into quarantine; None when neither keeps them.

    The bytes are checked against the declared digests as they are taken (other bytes are
    not taken, and the folder's copy under that name is discarded), then read and settled
    like a download. `recorded_sha256` is as for `HubSource.fetch`.
    """
    entry = SnapshotFile(declared.path, declared=declared)
    folder = HostFolder(home)
    landed = quarantine.path_for(declared.path)
    if take_from(
        folder.get,
        folder.url,
        declared,
        landed,
        sha256=recorded_sha256,
        on_bytes=progress.advance,
    ):
        return HubArrival(entry, landed, quarantine, blob_store)
    digest = declared.sha256 if declared.lfs else recorded_sha256
    if digest is not None:
        folder.discard(digest)  # other bytes under its name: a download replaces them
    if blob_store is not None:
        landed = quarantine.path_for(declared.path)
        if take(
            blob_store,
            declared,
            landed,
            sha256=recorded_sha256,
            on_bytes=progress.advance,
        ):
            return HubArrival(entry, landed, quarantine, blob_store)
    return None


@dataclass
class HubSession:
    """The declared files of one scan arriving: reused, described, or downloaded."""

    source: HubSource
    snapshot: Snapshot
    quarantine: Quarantine | None
    known: VerifiedFiles | None
    progress: Progress
    workers: int
    findings: list[Finding] = field(default_factory=list)
    incomplete: bool = False

    def arrivals(self) -> Iterator[Arrival | Ready | Refused]:
        """Each wanted file: reused from the store, described (metadata only), or downloaded.

        Raises:
            SourceError: the Hub could not be reached or refused a request (not a missing file).
        """
        wanted = [f.declared for f in self.snapshot.files if f.declared is not None]
        if self.quarantine is None:
            yield from self._described(wanted)
            return
        to_fetch: list[DeclaredFile] = []
        # In digest order: a `known` that holds each blob until its scan is recorded (the
        # service's jobs, verifier.service.jobs.JobRecorder) takes them in one order in every
        # job, so two jobs never wait on each other.
        for declared in sorted(wanted, key=lambda d: (d.sha256 or "", d.path)):
            # Only LFS files (the weights) are reused: small git files are cheap to fetch again
            # and carry the facts (config, card) scanners note on each read.
            previous = (
                self.known.verified_file(declared)
                if self.known is not None and declared.lfs
                else None
            )
            # Reused only while the store still holds the verified bytes: `pull` places from
            # there, and a file recorded by a local scan (or a store cleared since) was never
            # kept in it.
            store = self.source.blob_store
            if previous is not None and (
                is_stored(self.source.home, previous)
                or (store is not None and restore(store, self.source.home, declared))
            ):
                yield Ready(reused_result(declared, previous))
            else:
                to_fetch.append(declared)
        self.progress.add_total(sum(d.size for d in to_fetch))
        quarantine = self.quarantine
        workers = max(1, min(self.workers, len(to_fetch) or 1))
        recorded = {d.path: self._recorded_sha256(d) for d in to_fetch}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(
                    self.source.fetch,
                    d,
                    quarantine,
                    self.progress,
                    recorded_sha256=recorded[d.path],
                )
                for d in to_fetch
            ]
            try:
                for future in futures:
                    yield future.result()
            finally:
                # A scan that fails as a whole does not start the downloads still waiting.
                for future in futures:
                    future.cancel()

    def _recorded_sha256(self, declared: DeclaredFile) -> str | None:
        """The SHA-256 to look a file outside LFS up by in the blob stores (LFS files are
        looked up by their declared one)."""
        if declared.lfs or self.known is None:
            return None
        return self.known.recorded_sha256(declared)

    def _described(self, wanted: Sequence[DeclaredFile]) -> Iterator[Ready]:
        pinned = self.source.model.pinned
        for declared in wanted:
            yield Ready(metadata_result(self.source.client, pinned, declared))
        self.incomplete = True
        self.findings.append(
            Finding(
                "METADATA-ONLY",
                Severity.HIGH,
                f"--metadata-only: {len(wanted)} file(s) were not downloaded, so their digests "
                "were not verified and their contents (pickle code, archives) were not scanned; "
                "only declared digests and safetensors headers were read",
            )
        )


def _missing(path: str) -> Finding:
    return Finding(
        "HF-MISSING-FILE",
        Severity.CRITICAL,
        "a declared file is not served at the pinned commit",
        file=path,
    )


def reused_result(declared: DeclaredFile, known: FileResult) -> FileResult:
    return dataclasses.replace(
        known,
        path=declared.path,
        findings=tuple(f.with_file(declared.path) for f in known.findings),
    )


def is_stored(home: Path, result: FileResult) -> bool:
    """Whether the store under `home` holds a regular file for `result`'s verified digest."""
    if result.sha256 is None:
        return False
    try:
        return stat.S_ISREG(os.lstat(verified_blob(home, result.sha256)).st_mode)
    except OSError:
        return False
