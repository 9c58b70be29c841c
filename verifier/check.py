"""The load-time gate: a model folder on disk re-hashed and compared with its lockfile entry.

Light on purpose (a container's entrypoint runs it before every start): no database, no Hub
client, no scanners; only the walk of `verifier.sources.local` and the one hashing reader.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from verifier.errors import LockfileError, TargetError
from verifier.hashing import HashingReader
from verifier.lockfile import LockedModel, drift
from verifier.model import (
    CheckResult,
    FileDigest,
    FileFormat,
    FileResult,
    Finding,
    Severity,
)
from verifier.sources.local import LocalFile, hf_cache_repo, open_regular, walk

#: Schema version of the `verifier check --format json` document.
CHECK_SCHEMA_VERSION = 1


def cache_repo_id(path: str) -> tuple[str, str] | None:
    """`(ns/name, commit)` when `path` is a snapshot folder of a Hugging Face cache."""
    real = os.path.realpath(path)
    repo = hf_cache_repo(real)
    if repo is None:
        return None
    namespace, _, name = os.path.basename(repo).removeprefix("models--").partition("--")
    commit = os.path.relpath(real, repo).split(os.sep)[1]
    return (f"{namespace}/{name}" if name else namespace), commit


def select_entry(models: tuple[LockedModel, ...], path: str, repo_id: str | None) -> LockedModel:
    """The lockfile entry for the model at `path`: named, read from a cache path, or the only one.

    Raises:
        LockfileError: the entry named (or the cache's model) is not in the lockfile, or the
            lockfile has several models and none is named.
    """
    wanted = repo_id
    if wanted is None and (cached := cache_repo_id(path)) is not None:
        wanted = cached[0]
    if wanted is not None:
        for model in models:
            if model.repo_id == wanted:
                return model
        raise LockfileError(f"the lockfile has no entry for {wanted}")
    if len(models) == 1:
        return models[0]
    raise LockfileError(
        f"the lockfile has {len(models)} models: name the one at {path} with --model ns/name"
    )


def _digest(entry: LocalFile) -> tuple[FileDigest, Finding | None]:
    try:
        fd, size = open_regular(entry.location)
    except OSError as exc:
        return FileDigest(entry.path, 0, None), _unreadable(entry.path, exc)
    try:
        digests = HashingReader(fd, size=size, location=entry.location).drain()
    except OSError as exc:
        return FileDigest(entry.path, 0, None), _unreadable(entry.path, exc)
    finally:
        os.close(fd)
    if digests.changed is not None or digests.size != size:
        finding = Finding(
            "FILE-CHANGED-DURING-SCAN",
            Severity.CRITICAL,
            f"file changed while it was hashed: {digests.changed or 'its size changed'}",
            file=entry.path,
        )
        return FileDigest(entry.path, digests.size, None), finding
    return FileDigest(entry.path, digests.size, digests.sha256), None


def _unreadable(path: str, exc: OSError) -> Finding:
    return Finding(
        "FILE-UNREADABLE",
        Severity.CRITICAL,
        f"file could not be read: {exc.strerror or exc}",
        file=path,
    )


def check_model(path: Path, locked: LockedModel, *, workers: int | None = None) -> CheckResult:
    """Re-hash every file of the folder `path` and compare it with `locked`.

    Drift (another commit in a cache path, a file changed, missing or not in the lock) is
    LOCK-DRIFT; links out of the folder, special files and unreadable files are findings too.

    Raises:
        TargetError: `path` does not exist or is not a folder.
    """
    if not path.is_dir():
        raise TargetError(f"{path}: not a folder (give the model's folder or cache snapshot)")
    tree = walk(path)
    with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 2)) as pool:
        measured = list(pool.map(_digest, tree.files))
    files = tuple(digest for digest, _ in measured)
    problems = [finding for _, finding in measured if finding is not None]
    cached = cache_repo_id(str(path))
    if cached is not None and cached[1] != locked.commit:
        problems.append(
            Finding(
                "LOCK-DRIFT",
                Severity.CRITICAL,
                "the cache snapshot is of another commit than the lockfile pins",
                evidence=f"locked {locked.commit}, snapshot {cached[1]}",
            )
        )
    read = [
        FileResult(f.path, f.size, f.sha256, None, FileFormat.UNKNOWN, (), complete=True)
        for f in files
        if f.sha256 is not None
    ]
    unreadable = {f.file for f in problems}
    changes = [f for f in drift(locked, locked.commit, read) if f.file not in unreadable]
    kept = [f for f in tree.findings if f.severity is not Severity.INFO]
    return CheckResult(
        path=str(path),
        repo_id=locked.repo_id,
        commit=locked.commit,
        files=files,
        findings=(*problems, *kept, *changes),
    )


def is_complete(result: CheckResult) -> bool:
    """Whether every file could be read (else the check could not complete: exit 3)."""
    return not any(
        f.code in ("FILE-UNREADABLE", "FILE-CHANGED-DURING-SCAN") for f in result.findings
    )


def check_document(result: CheckResult) -> dict[str, Any]:
    """The `verifier check --format json` document."""
    return {
        "schema_version": CHECK_SCHEMA_VERSION,
        "path": result.path,
        "repo_id": result.repo_id,
        "commit": result.commit,
        "matched": result.matched,
        "complete": is_complete(result),
        "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in result.files],
        "findings": [
            {
                "code": f.code,
                "severity": f.severity.value,
                "message": f.message,
                "file": f.file,
                "evidence": f.evidence,
            }
            for f in result.findings
        ],
    }
