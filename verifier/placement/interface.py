"""The placement seam: a verified snapshot in, a `Placement` out (hf_cache.py, local_dir.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from verifier.model import DeclaredFile, Placement


@dataclass(frozen=True)
class VerifiedFile:
    """One file of a verified commit, read from verifier's store of verified blobs."""

    #: Its path in the repository (checked: no `..`, not absolute).
    path: str
    size: int
    sha256: str
    #: The name `huggingface_hub` gives its blob: the LFS sha256, else the git blob id.
    etag: str
    #: Where verifier's store keeps its verified bytes.
    source: Path


@dataclass(frozen=True)
class VerifiedSnapshot:
    """The verified files of one pinned commit, as an allowed scan left them in the store."""

    repo_id: str
    #: The revision asked for (a branch, tag or the commit itself).
    revision: str
    commit: str
    files: tuple[VerifiedFile, ...]
    #: Every file the commit declares (the listing `huggingface_hub` caches beside it).
    declared: tuple[DeclaredFile, ...]


class Destination(Protocol):
    """Where a verified snapshot is placed, all at once or not at all."""

    def place(self, snapshot: VerifiedSnapshot, *, force: bool) -> Placement:
        """Place exactly `snapshot.files`; refuse (unless `force`) to replace other bytes.

        Raises:
            PlacementConflictError: the destination holds other bytes for the commit.
            PlacementError: the destination cannot be written or is not safe to write.
        """
        ...
