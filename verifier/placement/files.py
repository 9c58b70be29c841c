"""File operations both destinations share: verified copies, digests of what is there, links."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import sys
from pathlib import Path

from verifier.atomic import atomic_file
from verifier.errors import PlacementError
from verifier.placement.interface import VerifiedFile
from verifier.sources.local import open_regular
from verifier.sources.quarantine import path_escape_reason

_CHUNK = 4 * 1024 * 1024
#: Placed files: readable by everyone, writable by their owner (as `huggingface_hub` leaves them).
FILE_MODE = 0o644


def checked_parts(path: str) -> list[str]:
    """The components of a repository path, refusing any that could leave the destination.

    Raises:
        PlacementError: `path` is absolute, has `..`, `.` or empty parts, or odd characters.
    """
    reason = path_escape_reason(path)
    if reason is not None:
        raise PlacementError(f"refusing to place {path!r}: {reason}")
    return path.split("/")


def ensure_dir(folder: Path) -> Path:
    """`folder` created if needed; refused if it (or what is there) is a link or not a folder.

    Raises:
        PlacementError: something other than a real folder is in the way.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mode = os.lstat(folder).st_mode
    except OSError as exc:
        raise PlacementError(f"cannot create {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise PlacementError(f"refusing to write through {folder}: it is a link or not a folder")
    return folder


def sha256_of(location: Path) -> str | None:
    """The sha256 of the regular file at `location` (never through a link), or None."""
    try:
        fd, _size = open_regular(str(location))
    except OSError:
        return None
    digest = hashlib.sha256()
    try:
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.hexdigest()


def place_verified(file: VerifiedFile, target: Path) -> None:
    """Write `file`'s verified bytes to `target` atomically, checked as copied.

    The store's copy is hashed on the way: bytes changed since they were verified are refused,
    and then nothing is left at `target` or beside it (`verifier.atomic.atomic_file`).

    Raises:
        PlacementError: the store's copy is gone, unreadable or no longer matches its digest,
            or `target` cannot be written.
    """
    try:
        src, _size = open_regular(str(file.source))
    except OSError as exc:
        raise PlacementError(
            f"{file.path}: its verified copy {file.source} cannot be read "
            f"({exc.strerror or exc}); scan the model again"
        ) from None
    try:
        with atomic_file(target, mode=FILE_MODE) as sink:
            digest = hashlib.sha256()
            size = 0
            while chunk := os.read(src, _CHUNK):
                digest.update(chunk)
                size += len(chunk)
                sink.write(chunk)
            if (digest.hexdigest(), size) != (file.sha256, file.size):
                raise PlacementError(
                    f"{file.path}: the verified copy {file.source} no longer matches its digest "
                    "(changed on disk since it was verified); scan the model again"
                )
    except OSError as exc:
        raise PlacementError(f"{file.path}: cannot write {target}: {exc.strerror or exc}") from None
    finally:
        os.close(src)


def remove_tree(folder: Path) -> None:
    """Remove a folder verifier made for staging (or one it replaced); errors are ignored."""
    shutil.rmtree(folder, ignore_errors=True)


def existing_files(folder: Path) -> dict[str, Path]:
    """Every entry below `folder` that is not a folder (files, links, others) by relative path."""
    found: dict[str, Path] = {}
    for current, dirs, names in os.walk(folder, followlinks=False):
        base = Path(current)
        # A link to a folder is listed with the folders by os.walk: count it as an entry.
        for name in [d for d in dirs if (base / d).is_symlink()]:
            dirs.remove(name)
            names.append(name)
        for name in names:
            found[(base / name).relative_to(folder).as_posix()] = base / name
    return found


def swap_in(new: Path, final: Path, staging: Path) -> bool:
    """Move the complete folder `new` to `final`; an old `final` ends up in `staging`.

    Returns whether an old folder was replaced. On Linux the two are exchanged in one step
    (`renameat2` with `RENAME_EXCHANGE`); elsewhere a reader may briefly find no folder
    between two renames. Never a partial one.
    """
    if not os.path.lexists(final):
        try:
            os.rename(new, final)
            return False
        except OSError as exc:  # another pull placed it meanwhile: exchange with that one
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if not _exchange(new, final):
        os.rename(final, staging / "replaced")
        os.rename(new, final)
    return True


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically where the system can (Linux 3.15+, glibc 2.28+)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    path, fd = ctypes.c_char_p, ctypes.c_int
    renameat2.argtypes = [fd, path, fd, path, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return bool(result == 0)
