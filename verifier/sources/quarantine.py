"""The quarantine folder and the content-addressed store under `VERIFIER_HOME`.

Downloads land in `quarantine/<scan id>/`; only a file whose bytes matched the declared digest
moves on, to `blobs/sha256/<2 hex>/<sha256>`. Nothing unverified leaves quarantine, and no
declared path can name a place outside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

#: Path components no source may declare.
_FORBIDDEN_PARTS = frozenset({"", ".", ".."})


def path_escape_reason(path: str) -> str | None:
    """Why `path` (as a source declares it) could escape a folder, or None when it is safe."""
    if not path:
        return "empty path"
    if "\x00" in path:
        return "NUL byte in path"
    if "\\" in path:
        return "backslash in path (a separator on Windows)"
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        return "absolute path"
    if any(part in _FORBIDDEN_PARTS for part in path.split("/")):
        return "'..', '.' or empty component in path"
    if any(ord(c) < 32 for c in path):
        return "control character in path"
    return None


def verified_blob(home: Path, sha256: str) -> Path:
    """Where the store under `home` keeps the verified content with this sha256."""
    return (home / "blobs" / "sha256").resolve() / sha256[:2] / sha256


def touch_blob(final: Path) -> None:
    """Mark a kept blob as just used (its modification time): `verifier blobs gc` never
    deletes a blob used more recently than its grace period, so a job that finds its blob
    already in the folder keeps it there. Best effort: a blob owned by another user keeps its
    time."""
    with contextlib.suppress(OSError):
        os.utime(final)


class Quarantine:
    """A scan's private download folder, removed when the scan ends."""

    def __init__(self, home: Path, scan_id: str) -> None:
        self.root = (home / "quarantine" / scan_id).resolve()
        self.blobs = (home / "blobs" / "sha256").resolve()
        self.root.mkdir(parents=True, exist_ok=False)

    def path_for(self, path: str) -> Path:
        """Where the download of `path` lands; the path must have passed `path_escape_reason`.

        Raises:
            ValueError: `path` would land outside the quarantine.
        """
        if path_escape_reason(path) is not None:
            raise ValueError(f"unsafe path {path!r}")
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise ValueError(f"path {path!r} resolves outside the quarantine")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def blob_path(self, sha256: str) -> Path:
        """Where the verified content with this sha256 is kept."""
        return verified_blob(self.blobs.parents[1], sha256)

    def promote(self, landed: Path, sha256: str) -> Path:
        """Move a verified download into the content-addressed store; return its place.

        The download replaces whatever the store held under that name: those are the bytes
        just verified, while a file already there was never compared with them (other bytes
        planted or left under the name would otherwise stay, and be what the store offers).
        Readers of the old file keep reading it; its new modification time marks it as just
        used for `verifier blobs gc`.
        """
        final = self.blob_path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        landed.chmod(0o444)
        os.replace(landed, final)
        return final

    @staticmethod
    def discard(landed: Path) -> None:
        """Delete a download that did not verify."""
        landed.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the quarantine folder and whatever is left in it."""
        shutil.rmtree(self.root, ignore_errors=True)
