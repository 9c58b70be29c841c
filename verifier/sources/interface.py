"""The Source seam: what a local folder, a single file, an HF cache snapshot or a Hub offers a scan.

A source is made for one target. `resolve` pins it once (a frozen `Snapshot`: the record's
name and source fields, the pin, the declared files and what the walk or listing refused).
`read_side_file` reads a small file such as a signature bundle, once. `session` is where the
files arrive: each as an `Arrival` (bytes to open, with what the source declares about them),
as a `Ready` result that needs no read (reused from the store, or described from metadata
only), or as a `Refused` finding. Every arrival is read by the one per-file path
(`verifier.file_scan.read_arrival`): one hashing reader, which hashes every byte once (no
source hashes on its own), and the one scanner dispatch. Sources do I/O; the pipeline that
sequences them does none of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    PinnedRevision,
    Provenance,
    Severity,
)

#: The finding for a target that holds nothing to verify (every source says it the same way).
TARGET_EMPTY = Finding("TARGET-EMPTY", Severity.HIGH, "the target holds no file to verify")


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a snapshot: its recorded path, what the source declares, where it lies."""

    path: str
    #: Size and digests the source declares before any byte is read (None: a local file).
    declared: DeclaredFile | None = None
    #: Where the bytes already are on this machine (local sources), else None.
    location: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """A target resolved once: every later read names this pin, never the branch or path again."""

    #: The name the scan is recorded under.
    target: str
    #: The report's `source` fields (type, root or repo and commit, ...).
    record: Mapping[str, str]
    #: The files to read, in path order (after any include/exclude and refused paths).
    files: tuple[SnapshotFile, ...]
    #: What resolution found: refused paths, listings that disagree, files left out.
    findings: tuple[Finding, ...] = ()
    #: The commit a remote source pinned (None for local sources).
    pinned: PinnedRevision | None = None
    #: Every file the pinned revision declares (None when the source declares nothing).
    declared: tuple[DeclaredFile, ...] | None = None

    @property
    def empty(self) -> bool:
        """Whether the target holds no file at all (not merely none selected)."""
        return not self.files and not self.declared


class Arrival(Protocol):
    """A file whose bytes are here to read once: opened by the reader, settled after the scan."""

    @property
    def entry(self) -> SnapshotFile:
        """The snapshot file that arrived."""
        ...

    @property
    def location(self) -> str:
        """Where the bytes lie on this machine (checked for a file put in their place)."""
        ...

    @property
    def git_sha1(self) -> bool:
        """Whether the reader computes the git blob SHA-1 (the digest this file is declared by)."""
        ...

    @property
    def unreadable_reason(self) -> str:
        """How to say the bytes could not be opened: '<this> could not be read: <why>'."""
        ...

    def open(self) -> tuple[int, int]:
        """Open the bytes for reading; return (file descriptor, size). The caller closes it.

        Raises:
            OSError: the bytes are gone or unreadable.
        """
        ...

    def settle(self, result: FileResult) -> FileResult:
        """Compare what was read with what was declared, keep or discard the bytes, and return
        the result with any findings about the difference."""
        ...


@dataclass(frozen=True)
class Ready:
    """A file known without reading its bytes: reused from the store, or described by metadata."""

    result: FileResult


@dataclass(frozen=True)
class Refused:
    """A declared file that did not arrive (missing, served from another commit, oversize)."""

    finding: Finding


class Session(Protocol):
    """The files of one scan arriving; bytes kept only while the session is open."""

    #: Findings about the session as a whole (such as metadata only), known once it ends.
    findings: list[Finding]
    #: Whether some files were only described (never an allow).
    incomplete: bool

    def arrivals(self) -> Iterator[Arrival | Ready | Refused]:
        """Each wanted file as it arrives (downloads may run in parallel).

        Raises:
            SourceError: the source could not be reached or refused a request.
        """
        ...


class SideFileError(Exception):
    """A side file (a signature bundle) could not be read; the message says why."""


@dataclass(frozen=True)
class SourceFacts:
    """What a source knows about the model beyond its bytes: provenance and its findings."""

    provenance: Provenance | None = None
    findings: tuple[Finding, ...] = field(default_factory=tuple)


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


class VerifiedFiles(Protocol):
    """A record of files already verified (the store): their bytes need not arrive again.

    One ability every recorder has (`verifier.store.interface.ScanRecorder`)."""

    def verified_file(self, declared: DeclaredFile) -> FileResult | None:
        """A file this verifier version verified and scanned with these declared digests."""
        ...

    def recorded_sha256(self, declared: DeclaredFile) -> str | None:
        """The SHA-256 of bytes some scan (any version) read completely with the declared
        size and git blob id or SHA-256: the name a blob store keeps them under."""
        ...


class Source(Protocol):
    """One target behind the seam: resolved once, its files arriving as streams."""

    #: Files read at once when the caller does not say.
    default_workers: int

    def resolve(self) -> Snapshot:
        """Pin the target and list its files.

        Raises:
            TargetError: the target does not exist or cannot be read.
            SourceError: a remote source refused or could not answer.
        """
        ...

    def read_side_file(self, snapshot: Snapshot, entry: SnapshotFile, *, limit: int) -> bytes:
        """The bytes of a small file of the snapshot (at most `limit`), read once.

        Raises:
            SideFileError: it could not be read, or is not the file the source declares.
            SourceError: a remote source could not be reached.
        """
        ...

    def session(
        self,
        snapshot: Snapshot,
        *,
        scan_id: str,
        known: VerifiedFiles | None,
        progress: Progress,
        workers: int | None,
    ) -> AbstractContextManager[Session]:
        """Where the snapshot's files arrive for one scan; `known` files need not arrive."""
        ...

    def facts(self, snapshot: Snapshot) -> SourceFacts:
        """Provenance and lineage the source declares (nothing for local sources).

        Raises:
            SourceError: a remote source could not be reached.
        """
        ...

    def locations(
        self, snapshot: Snapshot, files: Sequence[FileResult]
    ) -> Mapping[str, str] | None:
        """Where each scanned file can be read again after the scan (None: nowhere)."""
        ...
