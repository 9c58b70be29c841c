"""Lockfiles for CI: the pinned commit and every file's size and sha256, and drift against them.

The format is JSON (documented in docs/huggingface.md), small enough to review in a pull request:

    {"schema_version": 1, "version": 1,
     "models": [{"target", "repo_id", "revision", "commit", "endpoint",
                 "files": [{"path", "size", "sha256", "git_sha1"}]}]}

Its JSON Schema is verifier/schemas/lockfile.schema.json.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier import bounded_json
from verifier.atomic import replace_atomically
from verifier.errors import LockfileError
from verifier.model import FileResult, Finding, ScanReport, Severity

LOCK_VERSION = 1
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LockedFile:
    """One file as locked: its path, size and sha256 (and git blob id when known)."""

    path: str
    size: int
    sha256: str
    git_sha1: str | None = None


@dataclass(frozen=True)
class LockedModel:
    """One model as locked: the revision asked for and the commit it resolved to."""

    repo_id: str
    revision: str
    commit: str
    endpoint: str
    files: tuple[LockedFile, ...]

    @property
    def target(self) -> str:
        """The scan target that checks this model again (the revision, not the commit)."""
        return f"hf://{self.repo_id}@{self.revision}"


def locked_from_report(report: ScanReport) -> LockedModel:
    """The lock entry of a complete, allowed Hub scan.

    Raises:
        LockfileError: the scan is not of a Hub model or did not verify every file.
    """
    source = report.source
    if source.get("type") != "huggingface":
        raise LockfileError(f"{report.target}: only Hugging Face models can be locked")
    files = []
    for result in report.files:
        if not result.complete or result.sha256 is None:
            raise LockfileError(f"{report.target}: {result.path} was not fully read; not locked")
        files.append(LockedFile(result.path, result.size, result.sha256, result.git_sha1))
    return LockedModel(
        repo_id=source["repo_id"],
        revision=source["revision_requested"],
        commit=source["commit"],
        endpoint=source["endpoint"],
        files=tuple(sorted(files, key=lambda f: f.path)),
    )


def lock_document(models: Sequence[LockedModel]) -> dict[str, Any]:
    """The lockfile's JSON document."""
    return {
        "schema_version": LOCK_VERSION,
        # `version` too: the lockfile's first readers know only that name.
        "version": LOCK_VERSION,
        "models": [
            {
                "target": m.target,
                "repo_id": m.repo_id,
                "revision": m.revision,
                "commit": m.commit,
                "endpoint": m.endpoint,
                "files": [
                    {"path": f.path, "size": f.size, "sha256": f.sha256, "git_sha1": f.git_sha1}
                    for f in m.files
                ],
            }
            for m in sorted(models, key=lambda m: m.repo_id)
        ],
    }


def write_lock(path: Path, models: Sequence[LockedModel]) -> None:
    """Write the lockfile atomically (a temporary file, then a rename).

    Raises:
        LockfileError: the file cannot be written.
    """
    text = json.dumps(lock_document(models), indent=2) + "\n"
    try:
        replace_atomically(path, text.encode("utf-8"))
    except OSError as exc:
        raise LockfileError(f"cannot write lockfile {path}: {exc.strerror or exc}") from None


def _field(item: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = item.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise LockfileError(f"{where}: '{key}' must be a {kind.__name__}")
    return value


def read_lock(path: Path) -> tuple[LockedModel, ...]:
    """Read and validate a lockfile.

    Raises:
        LockfileError: the file is missing, not JSON, or not a valid lockfile.
    """
    try:
        with path.open("rb") as handle:
            raw = handle.read(bounded_json.TRUST_INPUT.max_bytes + 1)
        doc = bounded_json.loads(raw, bounded_json.TRUST_INPUT)
    except FileNotFoundError:
        raise LockfileError(f"lockfile not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise LockfileError(f"cannot read lockfile {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema_version", doc.get("version")) != LOCK_VERSION:
        raise LockfileError(f"{path}: not a version {LOCK_VERSION} verifier lockfile")
    models_raw = doc.get("models")
    if not isinstance(models_raw, list) or not models_raw:
        raise LockfileError(f"{path}: 'models' must be a non-empty list")
    models = []
    for index, item in enumerate(models_raw):
        where = f"{path}: models[{index}]"
        if not isinstance(item, dict):
            raise LockfileError(f"{where}: must be an object")
        commit = _field(item, "commit", str, where)
        if not _COMMIT.match(commit):
            raise LockfileError(f"{where}: 'commit' must be 40 lowercase hex characters")
        files = []
        for file_index, raw in enumerate(_field(item, "files", list, where)):
            fwhere = f"{where}.files[{file_index}]"
            if not isinstance(raw, dict):
                raise LockfileError(f"{fwhere}: must be an object")
            sha = _field(raw, "sha256", str, fwhere)
            if not _SHA256.match(sha):
                raise LockfileError(f"{fwhere}: 'sha256' must be 64 lowercase hex characters")
            git = raw.get("git_sha1")
            files.append(
                LockedFile(
                    path=_field(raw, "path", str, fwhere),
                    size=_field(raw, "size", int, fwhere),
                    sha256=sha,
                    git_sha1=git if isinstance(git, str) else None,
                )
            )
        models.append(
            LockedModel(
                repo_id=_field(item, "repo_id", str, where),
                revision=_field(item, "revision", str, where),
                commit=commit,
                endpoint=str(item.get("endpoint") or ""),
                files=tuple(files),
            )
        )
    return tuple(models)


class DriftCode(enum.StrEnum):
    """What a model was compared with: its lockfile entry, or the service's record of it."""

    LOCK = "LOCK-DRIFT"
    RECORD = "RECORD-DRIFT"


#: Per comparison: a file gone, a file changed, a file added, and the word for the expected side.
_DRIFT_WORDS = {
    DriftCode.LOCK: (
        "locked file is gone",
        "file changed since it was locked",
        "file added since the lock was written",
        "locked",
    ),
    DriftCode.RECORD: (
        "recorded file is gone",
        "file differs from the bytes the service scanned",
        "file is not in the service's record (it was never scanned)",
        "recorded",
    ),
}


def drift(
    locked: LockedModel,
    commit: str,
    files: Sequence[FileResult],
    *,
    code: DriftCode = DriftCode.LOCK,
) -> list[Finding]:
    """Drift findings (`code`): another commit, or a file changed, added or removed."""
    gone, changed, added, expected = _DRIFT_WORDS[code]
    findings = []
    if commit != locked.commit:
        findings.append(
            Finding(
                code.value,
                Severity.CRITICAL,
                f"{locked.repo_id}@{locked.revision} now resolves to another commit than locked",
                evidence=f"locked {locked.commit}, now {commit}",
            )
        )
    seen = {f.path: f for f in files}
    for entry in locked.files:
        actual = seen.pop(entry.path, None)
        if actual is None:
            findings.append(_drift(code, entry.path, gone, f"{expected} {entry.sha256}"))
        elif (actual.sha256, actual.size) != (entry.sha256, entry.size):
            findings.append(
                _drift(
                    code,
                    entry.path,
                    changed,
                    f"{expected} {entry.sha256}/{entry.size}, now {actual.sha256}/{actual.size}",
                )
            )
    for path in sorted(seen):
        findings.append(_drift(code, path, added, None))
    return findings


def _drift(code: DriftCode, path: str, message: str, evidence: str | None) -> Finding:
    return Finding(code.value, Severity.CRITICAL, message, file=path, evidence=evidence)


def find_locked(models: Sequence[LockedModel], repo_id: str) -> LockedModel:
    """The lock entry for `repo_id`.

    Raises:
        LockfileError: the lockfile does not name it.
    """
    for model in models:
        if model.repo_id == repo_id:
            return model
    raise LockfileError(f"the lockfile has no entry for {repo_id}")
