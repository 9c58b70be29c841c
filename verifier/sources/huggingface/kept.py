"""A recorded Hub model scanned again from the bytes kept of it, asking the Hub nothing.

The service's re-scans after a scanner upgrade (`verifier.service.upkeep`) read the commit's
declared files, its provenance and its declared lineage from the scan recorded before, and
every byte from this host's folder of verified blobs or the shared blob store. Each byte is
hashed again on arrival and must match the digests the commit declared; a file kept nowhere
fails the re-scan as a whole (`NotKeptError`), so that the scan recorded before stands instead
of a scan that lacks a file.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from verifier.blobs.folder import HostFolder
from verifier.blobs.interface import BlobStore, BlobStoreError
from verifier.errors import SourceError
from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    PinnedRevision,
    ScanReport,
    Severity,
)
from verifier.sources.huggingface.manifest import declared_digest_matches, listing_findings
from verifier.sources.huggingface.provenance import lineage_findings
from verifier.sources.huggingface.source import is_stored, reused_result, take_kept
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
from verifier.sources.quarantine import Quarantine, path_escape_reason, verified_blob


class NotKeptError(SourceError):
    """A file of the recorded commit is kept neither on this host nor in the shared store."""


@dataclass(frozen=True)
class KeptFile:
    """A declared file and the SHA-256 its bytes are kept under (None: no name to look up)."""

    declared: DeclaredFile
    sha256: str | None


def kept_files(previous: ScanReport) -> list[KeptFile]:
    """The declared files of `previous` a re-scan reads, with the name each is kept under: an
    LFS file's declared SHA-256, else the SHA-256 `previous` measured of it (a file outside LFS
    declares only its git blob id). Paths that could escape the quarantine are left out (the
    re-scan refuses them as the Hub source does)."""
    measured = {f.path: f.sha256 for f in previous.files if f.complete}
    return [
        KeptFile(d, d.sha256 if d.lfs else measured.get(d.path))
        for d in previous.declared_files or ()
        if path_escape_reason(d.path) is None
    ]


def not_kept_reason(
    previous: ScanReport, *, home: Path, blob_store: BlobStore | None
) -> str | None:
    """Why `previous` cannot be scanned again from kept bytes, or None when every file it
    declares is kept here or in `blob_store` (present; the re-scan verifies the bytes).

    Never raises: a shared store that cannot be asked is a reason.
    """
    if previous.declared_files is None:
        return "the scan recorded no declared files (not a Hub scan)"
    folder = HostFolder(home)
    missing: list[str] = []
    for kept in kept_files(previous):
        if kept.sha256 is None:
            missing.append(kept.declared.path)
            continue
        if folder.has(kept.sha256):
            continue
        try:
            if blob_store is not None and blob_store.has(kept.sha256):
                continue
        except BlobStoreError as exc:
            return f"the shared blob store could not be asked: {exc}"
        missing.append(kept.declared.path)
    if not missing:
        return None
    where = "this host's blob folder" + (" or the shared blob store" if blob_store else "")
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"{len(missing)} declared file(s) not kept in {where}: {shown}"


class KeptHubSource:
    """The `Source` of a recorded Hub commit read again from kept bytes only (see module)."""

    default_workers = 4

    def __init__(
        self, target: str, previous: ScanReport, *, home: Path, blob_store: BlobStore | None
    ) -> None:
        """Scan `target` (the recorded `hf://ns/name@commit`) again as `previous` declared it.

        Raises:
            SourceError: `previous` is not a scan of a Hub commit.
        """
        source = previous.source
        commit = source.get("commit")
        if previous.declared_files is None or not commit or not source.get("repo_id"):
            raise SourceError(f"{target}: the scan recorded before is not of a Hub commit")
        self._target, self._previous = target, previous
        self.home, self.blob_store = home, blob_store
        self._kept = {k.declared.path: k for k in kept_files(previous)}
        self._pinned = PinnedRevision(
            repo_id=source["repo_id"],
            revision_requested=commit,
            commit=commit,
            endpoint=source.get("endpoint", ""),
        )

    def resolve(self) -> Snapshot:
        """The commit as the scan before recorded it (no request)."""
        previous = self._previous
        declared = previous.declared_files or ()
        findings: list[Finding] = []
        wanted: list[SnapshotFile] = []
        for entry in declared:
            reason = path_escape_reason(entry.path)
            if reason is None:
                wanted.append(SnapshotFile(entry.path, declared=entry))
            else:
                findings.append(
                    Finding(
                        "HF-PATH-ESCAPE",
                        Severity.CRITICAL,
                        f"declared path refused ({reason}): it could write outside the quarantine",
                        file=entry.path,
                    )
                )
        recorded = (*previous.findings, *(f for r in previous.files for f in r.findings))
        findings += listing_findings(recorded)
        return Snapshot(
            target=self._target,
            record={**previous.source, "revision_requested": self._pinned.commit},
            files=tuple(wanted),
            findings=tuple(findings),
            pinned=self._pinned,
            declared=declared,
        )

    def read_side_file(self, snapshot: Snapshot, entry: SnapshotFile, *, limit: int) -> bytes:
        """A small declared file (a signature) from the kept bytes, checked against its digest.

        Raises:
            SideFileError: Larger than `limit`.
            NotKeptError: Its bytes are kept nowhere (the re-scan fails: a signature that could
                not be read would be decided as invalid, for want of bytes).
        """
        declared = entry.declared
        if declared is None:
            raise SideFileError("is not declared by the commit")
        if declared.size > limit:
            raise SideFileError(f"is {declared.size} bytes, over {limit}")
        kept = self._kept.get(declared.path)
        if kept is not None and kept.sha256 is not None:
            folder = HostFolder(self.home)
            stores = [folder.get] + ([self.blob_store.get] if self.blob_store else [])
            for get in stores:
                sink = io.BytesIO()
                try:
                    found = get(kept.sha256, sink)
                except BlobStoreError:
                    continue
                raw = sink.getvalue()
                if found and declared_digest_matches(declared, raw):
                    return raw
        raise NotKeptError(_not_kept_message(self._target, declared.path))

    @contextmanager
    def session(
        self,
        snapshot: Snapshot,
        *,
        scan_id: str,
        known: VerifiedFiles | None,
        progress: Progress,
        workers: int | None,
    ) -> Iterator[KeptSession]:
        """The kept bytes brought into this scan's quarantine, removed when the session ends."""
        quarantine = Quarantine(self.home, scan_id)
        try:
            yield KeptSession(self, snapshot, quarantine=quarantine, known=known, progress=progress)
        finally:
            quarantine.close()

    def facts(self, snapshot: Snapshot) -> SourceFacts:
        """The provenance and declared lineage recorded before (no request)."""
        provenance = self._previous.provenance
        if provenance is None:
            return SourceFacts()
        provenance = dataclasses.replace(provenance, revision_requested=self._pinned.commit)
        return SourceFacts(
            provenance=provenance, findings=tuple(lineage_findings(provenance.lineage))
        )

    def locations(
        self, snapshot: Snapshot, files: Sequence[FileResult]
    ) -> Mapping[str, str] | None:
        """Where the store keeps each fully verified file."""
        return {
            f.path: str(verified_blob(self.home, f.sha256))
            for f in files
            if f.sha256 is not None and f.complete and not f.findings
        }

    def take(self, declared: DeclaredFile, quarantine: Quarantine, progress: Progress) -> Arrival:
        """Bring one declared file's kept bytes into quarantine.

        Raises:
            NotKeptError: They are kept nowhere (or other bytes are kept under their name).
        """
        kept = self._kept.get(declared.path)
        sha256 = kept.sha256 if kept is not None else None
        if sha256 is not None:
            arrival = take_kept(
                self.home,
                self.blob_store,
                declared,
                quarantine,
                recorded_sha256=None if declared.lfs else sha256,
                progress=progress,
            )
            if arrival is not None:
                return arrival
        raise NotKeptError(_not_kept_message(self._target, declared.path))


def _not_kept_message(target: str, path: str) -> str:
    return (
        f"{target}: {path} is kept neither in this host's blob folder nor in the shared blob "
        "store; the scan recorded before stands (`verifier serve --rescan-from-hub` fetches "
        "what is not kept from the Hub)"
    )


@dataclass
class KeptSession:
    """The declared files of one re-scan arriving from kept bytes."""

    source: KeptHubSource
    snapshot: Snapshot
    quarantine: Quarantine
    known: VerifiedFiles | None
    progress: Progress
    findings: list[Finding] = field(default_factory=list)
    incomplete: bool = False

    def arrivals(self) -> Iterator[Arrival | Ready | Refused]:
        """Each wanted file: reused from the store (verified by this version), or taken.

        Raises:
            NotKeptError: A file is kept nowhere: the re-scan fails as a whole.
        """
        wanted = [f.declared for f in self.snapshot.files if f.declared is not None]
        self.progress.add_total(sum(d.size for d in wanted))
        # In digest order, as `HubSession`: a `known` that holds each blob until its scan is
        # recorded takes them in one order in every job.
        for declared in sorted(wanted, key=lambda d: (d.sha256 or "", d.path)):
            previous = (
                self.known.verified_file(declared)
                if self.known is not None and declared.lfs
                else None
            )
            if previous is not None and is_stored(self.source.home, previous):
                yield Ready(reused_result(declared, previous))
            else:
                yield self.source.take(declared, self.quarantine, self.progress)
