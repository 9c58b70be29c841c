"""SARIF 2.1.0: a scan's findings as one log that GitHub code scanning accepts."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from verifier.errors import UsageError
from verifier.formats import help_uri
from verifier.model import Finding, ScanReport, Severity

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SRCROOT = "%SRCROOT%"

_LEVELS = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
#: GitHub maps security-severity to its own scale: >= 9 critical, 7-8.9 high, 4-6.9 medium.
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "2.0",
    Severity.MEDIUM: "5.0",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}


def _uri(path: str) -> str:
    return quote(PurePosixPath(path).as_posix(), safe="/")


def _rule(code: str, severity: Severity) -> dict[str, Any]:
    uri = help_uri(code)
    return {
        "id": code,
        "name": "".join(part.capitalize() for part in code.split("-")),
        "shortDescription": {"text": f"verifier finding {code}"},
        "fullDescription": {
            "text": f"{code}: see docs/findings.md for what it means and what to do."
        },
        "help": {
            "text": f"Documented in docs/findings.md under {code}: {uri}",
            "markdown": f"Documented in [docs/findings.md under {code}]({uri}).",
        },
        "helpUri": uri,
        "defaultConfiguration": {"level": _LEVELS[severity]},
        "properties": {
            "tags": ["security", "supply-chain", "model"],
            "security-severity": _SECURITY_SEVERITY[severity],
        },
    }


def _fingerprint(finding: Finding) -> str:
    key = "\0".join(
        str(part)
        for part in (finding.code, finding.file, finding.member, finding.offset, finding.evidence)
    )
    return hashlib.sha256(key.encode()).hexdigest()


def _location(finding: Finding, target: str, prefix: str | None) -> dict[str, Any]:
    """Where `finding` is: its file below the scanned folder or, with `prefix` (the folder
    relative to the repository root), below the repository root."""
    region: dict[str, Any] = {"startLine": 1}
    if finding.offset is not None and finding.offset >= 0:
        region["byteOffset"] = finding.offset
    if prefix is None:
        path = finding.file or PurePosixPath(target).name or "."
    else:
        path = str(PurePosixPath(prefix, finding.file)) if finding.file else prefix
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": _uri(path), "uriBaseId": _SRCROOT},
        "region": region,
    }
    location: dict[str, Any] = {"physicalLocation": physical}
    if finding.member:
        location["logicalLocations"] = [{"fullyQualifiedName": finding.member, "kind": "resource"}]
    return location


def _utc(stamp: str) -> str | None:
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _message(finding: Finding) -> str:
    text = finding.message
    if finding.member:
        text += f" [member {finding.member}]"
    if finding.evidence:
        text += f" (evidence: {finding.evidence})"
    return text


def _invocation(report: ScanReport) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": report.status.value == "complete"}
    for key, stamp in (("startTimeUtc", report.started_at), ("endTimeUtc", report.finished_at)):
        utc = _utc(stamp)
        if utc is not None:
            invocation[key] = utc
    return invocation


def folder_in(root: str, repository: str) -> str:
    """The scanned folder (or file) `root` relative to `repository`, in POSIX form.

    Raises:
        UsageError: `root` is not inside `repository`.
    """
    base = os.path.realpath(repository)
    inside = os.path.realpath(root)
    if os.path.commonpath([base, inside]) != base:
        raise UsageError(f"--sarif-root {repository}: {root} is not inside it")
    return PurePosixPath(*os.path.relpath(inside, base).split(os.sep)).as_posix()


def _file_uri(folder: str) -> str:
    return "file://" + quote(PurePosixPath(folder).as_posix().rstrip("/") + "/", safe="/")


def report_log(report: ScanReport, *, sarif_root: str | None = None) -> dict[str, Any]:
    """The scan as a SARIF 2.1.0 log (a JSON-ready dictionary).

    Args:
        report: The scan.
        sarif_root: The repository root: locations become relative to it (as GitHub code
            scanning resolves them) instead of to the scanned folder.

    Raises:
        UsageError: `sarif_root` was given for a scan that has no local folder, or one that
            is not inside it.
    """
    root = report.source.get("root")
    prefix = None
    if sarif_root is not None:
        if not root:
            raise UsageError(
                "--sarif-root applies to scans of local files and folders: this scan's files "
                "are not in a repository"
            )
        prefix = folder_in(root, sarif_root)
    worst: dict[str, Severity] = {}
    for finding in report.findings:
        seen = worst.get(finding.code)
        if seen is None or finding.severity.rank > seen.rank:
            worst[finding.code] = finding.severity
    codes = sorted(worst)
    index = {code: i for i, code in enumerate(codes)}
    results = [
        {
            "ruleId": finding.code,
            "ruleIndex": index[finding.code],
            "level": _LEVELS[finding.severity],
            "message": {"text": _message(finding)},
            "locations": [_location(finding, report.target, prefix)],
            "partialFingerprints": {"verifierFinding/v1": _fingerprint(finding)},
            "properties": {
                "severity": finding.severity.value,
                "member": finding.member,
                "offset": finding.offset,
                "evidence": finding.evidence,
            },
        }
        for finding in report.findings
    ]
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "verifier",
                "version": report.tool_version,
                "semanticVersion": report.tool_version,
                "rules": [_rule(code, worst[code]) for code in codes],
            }
        },
        "automationDetails": {"id": f"verifier/{report.scan_id}"},
        "invocations": [_invocation(report)],
        "results": results,
        "properties": {
            "scan_id": report.scan_id,
            "target": report.target,
            "status": report.status.value,
            "decision": report.verdict.decision.value,
            "policy": report.verdict.policy_name,
            "policy_digest": report.verdict.policy_digest,
        },
    }
    base = os.path.realpath(sarif_root) if sarif_root is not None else root
    if base and PurePosixPath(base).as_posix().startswith("/"):
        run["originalUriBaseIds"] = {_SRCROOT: {"uri": _file_uri(base)}}
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def render_report(report: ScanReport, *, sarif_root: str | None = None) -> str:
    """The scan as one SARIF 2.1.0 JSON document (see `report_log`).

    Raises:
        UsageError: as `report_log`.
    """
    return json.dumps(report_log(report, sarif_root=sarif_root), indent=2)
