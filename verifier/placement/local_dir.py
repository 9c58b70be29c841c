"""A plain folder as a destination (`--local-dir`): the verified files as regular files.

The folder is built complete beside the real one (same file system) and renamed into place, so
a reader finds the old folder or the new one, never a partial one. Only a missing or empty
folder, or one already holding exactly these bytes, is accepted without `force`; `force`
replaces the folder as a whole (anything else in it goes).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from verifier.errors import PlacementConflictError, PlacementError
from verifier.model import Placement, PlacementOutcome
from verifier.placement.files import (
    checked_parts,
    existing_files,
    place_verified,
    remove_tree,
    sha256_of,
    swap_in,
)
from verifier.placement.interface import VerifiedSnapshot


@dataclass(frozen=True)
class LocalDir:
    """A folder that receives the files themselves, at their repository paths."""

    path: Path

    def place(self, snapshot: VerifiedSnapshot, *, force: bool) -> Placement:
        """Build the folder beside `path`, then rename it into place.

        Raises:
            PlacementConflictError: `path` holds other files or bytes (not `force`).
            PlacementError: `path` is a link or not a folder, or cannot be written.
        """
        for file in snapshot.files:
            checked_parts(file.path)
        final = Path(os.path.abspath(self.path.expanduser()))
        conflicts = _conflicts(snapshot, final)
        placement = Placement(
            repo_id=snapshot.repo_id,
            commit=snapshot.commit,
            path=str(final),
            files=tuple(sorted(f.path for f in snapshot.files)),
            outcome=PlacementOutcome.REPLACED if conflicts else PlacementOutcome.PLACED,
        )
        if conflicts is None:
            return dataclasses.replace(placement, outcome=PlacementOutcome.UNCHANGED)
        if conflicts and not force:
            more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
            raise PlacementConflictError(
                f"{final} already holds other files: {conflicts[0]}{more}; "
                "--force replaces the folder with the verified files"
            )
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.verifier-"))
        except OSError as exc:
            raise PlacementError(f"cannot write next to {final}: {exc.strerror or exc}") from None
        try:
            new = staging / "new"
            new.mkdir()
            for file in snapshot.files:
                target = new.joinpath(*checked_parts(file.path))
                target.parent.mkdir(parents=True, exist_ok=True)
                place_verified(file, target)
            swap_in(new, final, staging)
        except OSError as exc:
            raise PlacementError(f"cannot write {final}: {exc.strerror or exc}") from None
        finally:
            remove_tree(staging)
        return placement


def _conflicts(snapshot: VerifiedSnapshot, final: Path) -> list[str] | None:
    """What in `final` differs from the verified files ([] when empty or absent); None if same.

    Raises:
        PlacementError: `final` is a link or not a folder.
    """
    if not os.path.lexists(final):
        return []
    mode = os.lstat(final).st_mode
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise PlacementError(f"refusing to write to {final}: it is a link or not a folder")
    present = existing_files(final)
    if not present:
        return []
    wanted = {f.path: f for f in snapshot.files}
    conflicts = [f"{path} was not verified" for path in sorted(set(present) - set(wanted))]
    missing = set(wanted) - set(present)
    for path, entry in sorted(present.items()):
        if path in wanted and sha256_of(entry) != wanted[path].sha256:
            conflicts.append(f"{path} holds other bytes")
    if conflicts:
        return conflicts
    return [] if missing else None
