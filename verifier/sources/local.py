"""The local source: a folder or one file, walked without following anything out of it."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from verifier.errors import TargetError
from verifier.model import FileResult, Finding, Severity, SourceType
from verifier.printable import record_name
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

#: Folders that model loaders never read and that hold version-control internals.
SKIPPED_DIRS = frozenset({".git"})
#: Folders below the target walked at most this deep; deeper ones are a PATH-TOO-DEEP finding.
MAX_FOLDER_DEPTH = 64


@dataclass(frozen=True)
class LocalFile:
    """A regular file inside the target: its path relative to the root, and where to open it."""

    path: str
    location: str


@dataclass(frozen=True)
class LocalTree:
    """What walking a target found: files to read, and what was refused."""

    root: str
    files: tuple[LocalFile, ...]
    findings: tuple[Finding, ...]
    #: For a snapshot in a Hugging Face cache: the cache's repo folder (`models--ns--name`).
    hf_cache_repo: str | None = None


#: A snapshot folder of the Hugging Face cache: `.../models--<ns>--<name>/snapshots/<commit>`.
_HF_SNAPSHOT = re.compile(r"^(?P<repo>.*/models--[^/]+)/snapshots/[0-9a-f]{40}(?:/.*)?$")


def hf_cache_repo(root: str) -> str | None:
    """The `models--ns--name` folder when `root` is (inside) a snapshot of an HF cache."""
    match = _HF_SNAPSHOT.match(root)
    return match["repo"] if match else None


def _blobs_dir(tree_root: str) -> str | None:
    repo = hf_cache_repo(tree_root)
    return os.path.join(repo, "blobs") if repo else None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def walk(target: str | os.PathLike[str]) -> LocalTree:
    """List the regular files of `target`, refusing links out of it and special files.

    Raises:
        TargetError: the target does not exist or is neither a file nor a folder.
    """
    path = Path(target)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TargetError(f"target not found: {target}") from None
    except OSError as exc:
        raise TargetError(f"cannot read target {target}: {exc.strerror}") from None
    if stat.S_ISREG(mode):
        real = os.path.realpath(path)
        return LocalTree(
            root=os.path.dirname(real),
            files=(LocalFile(path=record_name(path.name), location=real),),
            findings=(),
        )
    if not stat.S_ISDIR(mode):
        raise TargetError(f"target is neither a file nor a folder: {target}")
    root = os.path.realpath(path)
    files: list[LocalFile] = []
    findings: list[Finding] = []
    _walk_dir(root, "", root, files, findings, depth=0)
    files.sort(key=lambda f: f.path)
    return LocalTree(
        root=root, files=tuple(files), findings=tuple(findings), hf_cache_repo=hf_cache_repo(root)
    )


def _walk_dir(
    folder: str,
    prefix: str,
    root: str,
    files: list[LocalFile],
    findings: list[Finding],
    *,
    depth: int,
) -> None:
    if depth > MAX_FOLDER_DEPTH:
        findings.append(
            Finding(
                "PATH-TOO-DEEP",
                Severity.HIGH,
                f"folder nested more than {MAX_FOLDER_DEPTH} levels below the target: "
                "it was not read",
                file=record_name(prefix.rstrip("/")),
            )
        )
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        findings.append(
            Finding(
                "FILE-UNREADABLE",
                Severity.CRITICAL,
                f"folder cannot be listed: {exc.strerror}",
                file=record_name(prefix.rstrip("/")) or ".",
            )
        )
        return
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_symlink():
            _symlink(entry, rel, root, files, findings)
        elif entry.is_dir(follow_symlinks=False):
            if entry.name in SKIPPED_DIRS:
                findings.append(
                    Finding(
                        "PATH-SKIPPED",
                        Severity.INFO,
                        "version-control folder not scanned (model loaders never read it)",
                        file=record_name(rel),
                    )
                )
                continue
            _walk_dir(entry.path, rel + "/", root, files, findings, depth=depth + 1)
        elif entry.is_file(follow_symlinks=False):
            files.append(LocalFile(path=record_name(rel), location=entry.path))
        else:
            findings.append(
                Finding(
                    "PATH-SPECIAL-FILE",
                    Severity.HIGH,
                    "special file (device, FIFO or socket) refused: it was not read",
                    file=record_name(rel),
                )
            )


def _symlink(
    entry: os.DirEntry[str], rel: str, root: str, files: list[LocalFile], findings: list[Finding]
) -> None:
    real = os.path.realpath(entry.path)
    # In an HF cache snapshot, files are links to the repo's content-addressed blobs folder.
    blobs = _blobs_dir(root)
    if not _inside(real, root) and not (blobs is not None and _inside(real, blobs)):
        findings.append(
            Finding(
                "PATH-SYMLINK-ESCAPE",
                Severity.HIGH,
                "symbolic link points outside the target; it was not followed",
                file=record_name(rel),
                evidence=record_name(os.readlink(entry.path)),
            )
        )
        return
    try:
        mode = os.stat(real).st_mode
    except OSError:
        findings.append(
            Finding(
                "PATH-SYMLINK-DANGLING",
                Severity.MEDIUM,
                "symbolic link points at nothing",
                file=record_name(rel),
                evidence=record_name(os.readlink(entry.path)),
            )
        )
        return
    if stat.S_ISREG(mode):
        files.append(LocalFile(path=record_name(rel), location=real))
    elif stat.S_ISDIR(mode):
        findings.append(
            Finding(
                "PATH-SYMLINK-DIR",
                Severity.INFO,
                "link to a folder inside the target; its files are scanned at their own path",
                file=record_name(rel),
            )
        )
    else:
        findings.append(
            Finding(
                "PATH-SPECIAL-FILE",
                Severity.HIGH,
                "link to a special file refused: it was not read",
                file=record_name(rel),
            )
        )


def open_regular(location: str) -> tuple[int, int]:
    """Open a file for reading without following a final symlink; return (fd, size).

    Raises:
        OSError: the file is gone, unreadable, or no longer a regular file.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(location, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file")
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


#: Opens a file for reading: (file descriptor, size). Tests hand in one that fails.
Opener = Callable[[str], tuple[int, int]]
#: Lists a target's files. Tests hand in one that changes the folder after listing.
Walker = Callable[[str], LocalTree]


@dataclass(frozen=True)
class LocalArrival:
    """A local file to read in place."""

    entry: SnapshotFile
    git_sha1: bool = False
    opener: Opener = open_regular
    #: What the source adds once the file is read (the HF cache's blob-name check).
    settler: Callable[[FileResult, str], FileResult] | None = None
    unreadable_reason: str = field(default="file could not be read", init=False)

    @classmethod
    def of(cls, file: LocalFile, *, git_sha1: bool = False) -> LocalArrival:
        """The arrival of one walked file."""
        return cls(SnapshotFile(file.path, location=file.location), git_sha1=git_sha1)

    @property
    def location(self) -> str:
        """Where the file lies."""
        return self.entry.location or ""

    def open(self) -> tuple[int, int]:
        """Open it without following a final link (see `open_regular`).

        Raises:
            OSError: the file is gone, unreadable or no longer a regular file.
        """
        return self.opener(self.location)

    def settle(self, result: FileResult) -> FileResult:
        """The result, with what the source checks after the read."""
        return result if self.settler is None else self.settler(result, self.location)


@dataclass
class LocalSession:
    """Local files arrive where they lie, one by one."""

    files: Sequence[Arrival]
    findings: list[Finding] = field(default_factory=list)
    incomplete: bool = False

    def arrivals(self) -> Iterator[Arrival | Ready | Refused]:
        """Each file, in path order."""
        yield from self.files


class LocalSource:
    """A local folder or a single file, walked once and read in place."""

    default_workers = os.cpu_count() or 2
    #: Whether files are read for their git blob SHA-1 too.
    git_sha1 = False

    def __init__(
        self, target: str, *, opener: Opener = open_regular, walker: Walker = walk
    ) -> None:
        self._target = target
        self._opener = opener
        self._walker = walker

    def resolve(self) -> Snapshot:
        """Walk the target (see `walk`).

        Raises:
            TargetError: the target does not exist or is neither a file nor a folder.
        """
        tree = self._walker(self._target)
        return Snapshot(
            target=record_name(self._target),  # a path given on the command line may not be UTF-8
            record=self._record(tree),
            files=tuple(SnapshotFile(f.path, location=f.location) for f in tree.files),
            findings=tree.findings,
        )

    def _record(self, tree: LocalTree) -> dict[str, str]:
        return {"type": SourceType.LOCAL.value, "root": record_name(tree.root)}

    def read_side_file(self, snapshot: Snapshot, entry: SnapshotFile, *, limit: int) -> bytes:
        """Read up to a little over `limit` bytes of `entry` (the caller refuses the excess).

        Raises:
            SideFileError: the file cannot be read.
        """
        try:
            return read_capped(entry.location or "", limit=limit, opener=self._opener)
        except OSError as exc:
            raise SideFileError(f"cannot be read: {exc.strerror or exc}") from None

    @contextmanager
    def session(
        self,
        snapshot: Snapshot,
        *,
        scan_id: str,
        known: VerifiedFiles | None,
        progress: Progress,
        workers: int | None,
    ) -> Iterator[LocalSession]:
        """The files where they lie: nothing to fetch, nothing to clean up."""
        yield LocalSession(
            [
                LocalArrival(
                    entry, git_sha1=self.git_sha1, opener=self._opener, settler=self._settle
                )
                for entry in snapshot.files
            ]
        )

    def _settle(self, result: FileResult, location: str) -> FileResult:
        return result

    def facts(self, snapshot: Snapshot) -> SourceFacts:
        """A folder declares no provenance."""
        return SourceFacts()

    def locations(
        self, snapshot: Snapshot, files: Sequence[FileResult]
    ) -> Mapping[str, str] | None:
        """The files can be read again where they lie."""
        return {f.path: f.location for f in snapshot.files if f.location is not None}


def read_capped(location: str, *, limit: int, opener: Opener = open_regular) -> bytes:
    """A small file's bytes: at most one read chunk past `limit`, so an oversize file shows.

    Raises:
        OSError: the file cannot be opened or read.
    """
    fd, _ = opener(location)
    try:
        chunks = []
        total = 0
        while total <= limit and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
