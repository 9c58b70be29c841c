"""Atomic output: a file appears whole or not at all (temporary file in the same folder, rename)."""

from __future__ import annotations

from pathlib import Path

from verifier.atomic import replace_atomically
from verifier.errors import OutputError


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename.

    Raises:
        OutputError: The folder does not exist or cannot be written; nothing is left behind.
    """
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    try:
        replace_atomically(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
