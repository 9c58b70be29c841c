"""The load-time gate: a model folder on disk re-hashed and compared with what was verified.

What was verified is a lockfile entry (`--lock`), or the service's record of the model@commit
with its decision (`--server`: the files of the scan that decided, and the gate's answer).

Light on purpose (a container's entrypoint runs it before every start): no database, no Hub
client, no scanners, no policy engine; only the walk of `verifier.sources.local`, the one
hashing reader and, with a server, the standard-library client.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.errors import ExitCode, LockfileError, ServiceError, TargetError, UsageError
from verifier.hashing import HashingReader
from verifier.lockfile import DriftCode, LockedModel, drift, locked_from_report
from verifier.model import (
    CheckResult,
    FileDigest,
    FileFormat,
    FileResult,
    Finding,
    ScanStatus,
    ServiceDecision,
    Severity,
)
from verifier.sources.local import LocalFile, hf_cache_repo, open_regular, walk

if TYPE_CHECKING:
    from verifier.service.client import ServiceClient

#: Schema version of the `verifier check --format json` document (2: `decision` added).
CHECK_SCHEMA_VERSION = 2
#: `verifier.policy.schema.Mode.ENFORCE`, not imported: the policy package loads pydantic.
_SUBJECT = re.compile(r"^(?:hf://)?([A-Za-z0-9][\w.-]*/[\w.-]+)@([0-9a-f]{40})$")


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


#: How a finding names the expected side of each comparison.
_EXPECTED = {DriftCode.LOCK: "the lockfile pins", DriftCode.RECORD: "the service scanned"}


def check_model(
    path: Path,
    locked: LockedModel,
    *,
    workers: int | None = None,
    code: DriftCode = DriftCode.LOCK,
) -> CheckResult:
    """Re-hash every file of the folder `path` and compare it with `locked`.

    Drift (another commit in a cache path, a file changed, missing or not in the lock) is
    `code`; links out of the folder, special files and unreadable files are findings too.

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
                code.value,
                Severity.CRITICAL,
                f"the cache snapshot is of another commit than {_EXPECTED[code]}",
                evidence=f"expected {locked.commit}, snapshot {cached[1]}",
            )
        )
    read = [
        FileResult(f.path, f.size, f.sha256, None, FileFormat.UNKNOWN, (), complete=True)
        for f in files
        if f.sha256 is not None
    ]
    unreadable = {f.file for f in problems}
    changed = drift(locked, locked.commit, read, code=code)
    changes = [f for f in changed if f.file not in unreadable]
    kept = [f for f in tree.findings if f.severity is not Severity.INFO]
    return CheckResult(
        path=str(path),
        repo_id=locked.repo_id,
        commit=locked.commit,
        files=files,
        expected=len(locked.files),
        findings=(*problems, *kept, *changes),
    )


def is_complete(result: CheckResult) -> bool:
    """Whether every file could be read (else the check could not complete: exit 3)."""
    return not any(
        f.code in ("FILE-UNREADABLE", "FILE-CHANGED-DURING-SCAN") for f in result.findings
    )


def service_subject(path: str, model: str | None) -> str:
    """`hf://ns/name@<commit>` of the folder checked against the service: `model` if given,
    else read from a cache snapshot path.

    Raises:
        UsageError: `model` is not pinned to a commit, or it is missing for a folder that is
            not a cache snapshot.
    """
    if model is not None:
        match = _SUBJECT.match(model)
        if match is None:
            raise UsageError(
                f"--model {model}: with --server, give ns/name@<40-hex commit> "
                "(the commit the folder holds)"
            )
        return f"hf://{match[1]}@{match[2]}"
    cached = cache_repo_id(path)
    if cached is None:
        raise UsageError(
            f"{path} is not a Hugging Face cache snapshot: name the model it holds with "
            "--model ns/name@<commit>"
        )
    return f"hf://{cached[0]}@{cached[1]}"


def check_with_service(
    path: Path,
    subject: str,
    *,
    client: ServiceClient,
    environment: str | None,
    workers: int | None = None,
) -> CheckResult:
    """Compare the folder `path` with the files of the service's scan of `subject`, and add
    the service's decision for it.

    The decision is asked first (`GET /api/v1/decision`); the files are those of the scan that
    answered (`GET /api/v1/models/...`), and both answers must name the same scan.

    Raises:
        ServiceError: The service has no decision for `subject` (never scanned), its record
            changed between the two answers, or an answer is out of contract.
        UsageError: The service refuses the token or the request.
        TargetError: `path` does not exist or is not a folder.
    """
    from verifier.report.json_format import parse_gate_document, parse_report_document

    if not path.is_dir():
        raise TargetError(f"{path}: not a folder (give the model's folder or cache snapshot)")
    answer = client.decision(subject, environment=environment)
    if answer["decision"] == "unknown":
        reasons = "; ".join(str(r.get("message", "")) for r in answer["reasons"][:3])
        raise ServiceError(
            f"{subject}: the service has no decision, so nothing vouches for these files "
            f"({reasons or 'never scanned'})"
        )
    status, scan_id = answer.get("status"), answer.get("scan_id")
    if status not in set(ScanStatus) or not isinstance(scan_id, str):
        raise ServiceError("the service's decision names no recorded scan and status")
    report = parse_report_document(dict(client.recorded_scan(subject)))
    if report.scan_id != scan_id:
        raise ServiceError(
            f"the service's record of {subject} changed while it was read (scan {scan_id}, "
            f"then {report.scan_id}); run the check again"
        )
    try:
        expected = locked_from_report(report)
    except LockfileError as exc:
        raise ServiceError(f"the service's scan {scan_id} cannot vouch for files: {exc}") from None
    # Hub names are case-insensitive (the service may answer with the Hub's spelling).
    if f"hf://{expected.repo_id}@{expected.commit}".lower() != subject.lower() or not (
        expected.files
    ):
        raise ServiceError(f"the service's scan {scan_id} is not a scan of the files of {subject}")
    verdict = parse_gate_document(answer)
    result = check_model(path, expected, workers=workers, code=DriftCode.RECORD)
    decision = ServiceDecision(client.url, subject, scan_id, ScanStatus(status), verdict)
    return replace(result, decision=decision)


def exit_code(result: CheckResult) -> ExitCode:
    """3 a file could not be read (or the service's scan is incomplete); 1 drift, or the
    service denies under an enforcing policy; else 0."""
    if not is_complete(result):
        return ExitCode.ERROR
    if not result.matched:
        return ExitCode.DENIED
    decision = result.decision
    if decision is None:
        return ExitCode.OK
    if decision.status is not ScanStatus.COMPLETE:
        return ExitCode.ERROR
    return ExitCode.DENIED if decision.verdict.blocks else ExitCode.OK


def refusal(result: CheckResult) -> str | None:
    """Why the checked model must not be loaded (one line), or None when it may be."""
    if exit_code(result) is ExitCode.OK:
        return None
    against = f"{result.repo_id}@{result.commit}"
    if result.findings:
        first = result.findings[0]
        where = f"{first.file}: " if first.file else ""
        more = f" (and {len(result.findings) - 1} more)" if len(result.findings) > 1 else ""
        return f"{result.path} does not match {against}: {where}{first.message}{more}"
    decision = result.decision
    if decision is None:  # not reached: a matched lockfile check exits 0
        return f"{result.path} does not match {against}"
    if decision.status is not ScanStatus.COMPLETE:
        return f"the service's scan {decision.scan_id} of {against} is {decision.status.value}"
    reasons = "; ".join(r.message for r in decision.verdict.reasons[:3])
    return f"the service denies {against}" + (f": {reasons}" if reasons else "")


def check_document(result: CheckResult) -> dict[str, Any]:
    """The `verifier check --format json` document."""
    from verifier.report.json_format import verdict_document

    decision = result.decision
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
        "decision": None
        if decision is None
        else {
            "server": decision.server,
            "subject": decision.subject,
            "scan_id": decision.scan_id,
            "status": decision.status.value,
            "decision": decision.verdict.decision.value,
            "policy": verdict_document(decision.verdict),
        },
    }
