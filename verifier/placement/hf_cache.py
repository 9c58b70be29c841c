"""The Hugging Face cache as a destination: `models--ns--name/{blobs,snapshots,refs,trees}`.

The layout is the one `huggingface_hub` writes and reads: each file's bytes once in
`blobs/<etag>` (the LFS sha256, else the git blob id), `snapshots/<commit>/<path>` as a
relative link to its blob, `refs/<revision>` holding the commit, and the commit's file listing
in `trees/<commit>.json` (what `huggingface_hub` 2.x caches to tell a complete snapshot from a
partial one). With `HF_HUB_OFFLINE=1` the client then serves these bytes without the network.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from verifier.atomic import replace_atomically
from verifier.errors import PlacementConflictError, PlacementError
from verifier.model import Placement, PlacementOutcome
from verifier.placement.files import (
    FILE_MODE,
    checked_parts,
    ensure_dir,
    existing_files,
    place_verified,
    remove_tree,
    sha256_of,
    swap_in,
)
from verifier.placement.interface import VerifiedFile, VerifiedSnapshot

#: The tree listing format `huggingface_hub` 2.x reads (`trees/<commit>.json`).
TREE_FORMAT_VERSION = 1


def default_cache_dir(environ: os._Environ[str] | dict[str, str] = os.environ) -> Path:
    """The cache `huggingface_hub` uses: `HF_HUB_CACHE`, else `HF_HOME/hub`, else the default.

    The same order the client reads (including the older `HUGGINGFACE_HUB_CACHE` and
    `XDG_CACHE_HOME`), without importing it.
    """
    explicit = environ.get("HF_HUB_CACHE") or environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = environ.get("HF_HOME")
    if not home:
        xdg = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def repo_folder_name(repo_id: str) -> str:
    """`models--<namespace>--<name>`, as the client names a model's folder."""
    return "models--" + repo_id.replace("/", "--")


@dataclass(frozen=True)
class HubCache:
    """A Hugging Face cache folder (`HF_HUB_CACHE`)."""

    root: Path

    def place(self, snapshot: VerifiedSnapshot, *, force: bool) -> Placement:
        """Place the snapshot's blobs, then its snapshot folder in one rename, then its ref.

        Raises:
            PlacementConflictError: the cache holds other bytes for the commit (not `force`).
            PlacementError: the cache cannot be written or a part of it is a link.
        """
        checked_parts(snapshot.repo_id)
        for file in snapshot.files:
            checked_parts(file.path)
        # The cache folder itself may be a link (a cache on another disk); nothing below it may.
        root = ensure_dir(self.root.expanduser().resolve())
        repo = ensure_dir(root / repo_folder_name(snapshot.repo_id))
        blobs = ensure_dir(repo / "blobs")
        snapshots = ensure_dir(repo / "snapshots")
        final = snapshots / snapshot.commit
        conflicts, stale_blobs = _conflicts(snapshot, blobs, final)
        if conflicts and not force:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            raise PlacementConflictError(
                f"{snapshot.repo_id}@{snapshot.commit} is already in the cache at {repo} with "
                f"other bytes: {conflicts[0]}{more}; --force replaces it with the verified files"
            )
        try:
            wrote_blobs = _write_blobs(snapshot.files, blobs, stale_blobs)
            same_snapshot = _snapshot_matches(snapshot, final, blobs)
            if not same_snapshot:
                _write_snapshot(snapshot, repo, final)
            _write_tree_listing(snapshot, repo)
            _write_ref(snapshot, repo)
        except OSError as exc:
            raise PlacementError(
                f"cannot write {snapshot.repo_id}@{snapshot.commit} into {repo}: "
                f"{exc.strerror or exc}"
            ) from None
        if conflicts:
            outcome = PlacementOutcome.REPLACED
        elif wrote_blobs or not same_snapshot:
            outcome = PlacementOutcome.PLACED
        else:
            outcome = PlacementOutcome.UNCHANGED
        return Placement(
            repo_id=snapshot.repo_id,
            commit=snapshot.commit,
            path=str(final),
            files=tuple(sorted(f.path for f in snapshot.files)),
            outcome=outcome,
        )


def _conflicts(snapshot: VerifiedSnapshot, blobs: Path, final: Path) -> tuple[list[str], set[str]]:
    """What in the cache differs from the verified files: messages, and the blobs to replace."""
    conflicts: list[str] = []
    stale: set[str] = set()
    for file in snapshot.files:
        blob = blobs / file.etag
        if os.path.lexists(blob) and sha256_of(blob) != file.sha256:
            conflicts.append(f"blobs/{file.etag} ({file.path}) holds other bytes")
            stale.add(file.etag)
    if not os.path.lexists(final):
        return conflicts, stale
    if not stat.S_ISDIR(os.lstat(final).st_mode):
        return [*conflicts, f"snapshots/{snapshot.commit} is not a folder"], stale
    wanted = {f.path: f for f in snapshot.files}
    for path, entry in sorted(existing_files(final).items()):
        expected = wanted.get(path)
        if expected is None:
            conflicts.append(f"{path} is in the snapshot but was not verified")
        elif (
            not _points_at_blob(entry, blobs / expected.etag)
            and sha256_of(entry) != expected.sha256
        ):
            conflicts.append(f"{path} in the snapshot holds other bytes")
    return conflicts, stale


def _points_at_blob(entry: Path, blob: Path) -> bool:
    """Whether `entry` is a link that resolves to exactly `blob` (checked separately)."""
    return entry.is_symlink() and os.path.realpath(entry) == os.path.realpath(blob)


def _write_blobs(files: tuple[VerifiedFile, ...], blobs: Path, stale: set[str]) -> bool:
    """Copy each missing or stale blob from the store (checked as copied), renamed in place."""
    wrote = False
    for file in files:
        blob = blobs / file.etag
        if os.path.lexists(blob) and file.etag not in stale:
            continue
        place_verified(file, blob)
        wrote = True
    return wrote


def _link_text(final: Path, path: str, blob: Path) -> str:
    """The relative link from `snapshots/<commit>/<path>` to its blob, as the client writes it."""
    return os.path.relpath(blob, (final / path).parent)


def _snapshot_matches(snapshot: VerifiedSnapshot, final: Path, blobs: Path) -> bool:
    """Whether the snapshot folder already links exactly the verified files to their blobs."""
    if not os.path.isdir(final) or os.path.islink(final):
        return False
    present = existing_files(final)
    if set(present) != {f.path for f in snapshot.files}:
        return False
    return all(_points_at_blob(present[f.path], blobs / f.etag) for f in snapshot.files)


def _write_snapshot(snapshot: VerifiedSnapshot, repo: Path, final: Path) -> None:
    """Build the snapshot folder beside the real one (same depth, same links) and swap it in."""
    staging = Path(tempfile.mkdtemp(dir=repo, prefix=".verifier-"))
    try:
        # `.verifier-XXXX/<commit>` is as deep below the repo folder as `snapshots/<commit>`, so
        # the relative links work in both places.
        new = staging / snapshot.commit
        new.mkdir()
        for file in snapshot.files:
            link = new.joinpath(*checked_parts(file.path))
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(_link_text(final, file.path, repo / "blobs" / file.etag), link)
        swap_in(new, final, staging)
    finally:
        remove_tree(staging)


def _write_tree_listing(snapshot: VerifiedSnapshot, repo: Path) -> None:
    """`trees/<commit>.json`: every file the commit declares, so a partial pull reads as partial."""
    files: dict[str, dict[str, object]] = {}
    for declared in snapshot.declared:
        entry: dict[str, object] = {"size": declared.size, "blob_id": declared.git_sha1 or ""}
        if declared.lfs and declared.sha256:
            entry["lfs_sha256"] = declared.sha256
            entry["lfs_size"] = declared.size
        files[declared.path] = entry
    document = {"format_version": TREE_FORMAT_VERSION, "files": dict(sorted(files.items()))}
    _write_text(ensure_dir(repo / "trees"), f"{snapshot.commit}.json", json.dumps(document))


def _write_ref(snapshot: VerifiedSnapshot, repo: Path) -> None:
    """`refs/<revision>` holding the commit (none for a commit asked for by id, as the client)."""
    if snapshot.revision == snapshot.commit:
        return
    *folders, name = checked_parts(snapshot.revision)
    folder = ensure_dir(repo / "refs")
    for part in folders:
        folder = ensure_dir(folder / part)
    _write_text(folder, name, snapshot.commit)


def _write_text(folder: Path, name: str, text: str) -> None:
    replace_atomically(folder / name, text.encode("utf-8"), mode=FILE_MODE)
