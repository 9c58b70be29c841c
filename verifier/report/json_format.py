"""The JSON contract: one document on stdout that scripts and other tools rely on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    Provenance,
    ScanReport,
    ScanSummary,
    Severity,
)


def finding_document(finding: Finding) -> dict[str, Any]:
    """A finding as JSON."""
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "file": finding.file,
        "member": finding.member,
        "offset": finding.offset,
        "evidence": finding.evidence,
        "message": finding.message,
    }


def _file_document(result: FileResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "size": result.size,
        "sha256": result.sha256,
        "git_sha1": result.git_sha1,
        "format": result.format.value,
        "complete": result.complete,
        "findings": [finding_document(f) for f in result.findings],
    }


def provenance_document(provenance: Provenance | None) -> dict[str, Any] | None:
    """Provenance as JSON (None for local scans)."""
    if provenance is None:
        return None
    lineage = provenance.lineage
    return {
        "source_type": provenance.source_type.value,
        "purl": provenance.purl,
        "repo_id": provenance.repo_id,
        "namespace": provenance.namespace,
        "commit": provenance.commit,
        "revision_requested": provenance.revision_requested,
        "endpoint": provenance.endpoint,
        "created_at": provenance.created_at,
        "last_modified": provenance.last_modified,
        "gated": provenance.gated,
        "private": provenance.private,
        "license": provenance.license,
        "license_name": provenance.license_name,
        "license_link": provenance.license_link,
        "tags": list(provenance.tags),
        "datasets": list(provenance.datasets),
        "languages": list(provenance.languages),
        "library_name": provenance.library_name,
        "pipeline_tag": provenance.pipeline_tag,
        "base_models": list(provenance.base_models),
        "base_model_relation": provenance.base_model_relation,
        "hub_security_status": provenance.hub_security_status,
        "lineage": {
            "edges": [
                {
                    "child": e.child,
                    "child_commit": e.child_commit,
                    "parent": e.parent,
                    "parent_commit": e.parent_commit,
                    "relation": e.relation.value,
                    "depth": e.depth,
                    "error": e.error,
                }
                for e in lineage.edges
            ],
            "roots": list(lineage.roots),
            "truncated": lineage.truncated,
            "cycle": lineage.cycle,
        },
    }


def declared_document(files: Sequence[DeclaredFile] | None) -> list[dict[str, Any]] | None:
    """Declared files as JSON (None for local scans)."""
    if files is None:
        return None
    return [
        {"path": f.path, "size": f.size, "sha256": f.sha256, "git_sha1": f.git_sha1, "lfs": f.lfs}
        for f in files
    ]


def report_document(report: ScanReport) -> dict[str, Any]:
    """The scan report as a JSON-ready dictionary (the documented contract)."""
    verdict = report.verdict
    counts = {s.value: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity.value] += 1
    return {
        "scan_id": report.scan_id,
        "target": report.target,
        "status": report.status.value,
        "decision": verdict.decision.value,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "tool": {"name": "verifier", "version": report.tool_version},
        "source": dict(report.source),
        "provenance": provenance_document(report.provenance),
        "declared_files": declared_document(report.declared_files),
        "summary": {
            "files": len(report.files),
            "bytes": sum(f.size for f in report.files),
            "findings": counts,
        },
        "files": [_file_document(f) for f in report.files],
        "findings": [finding_document(f) for f in report.findings],
        "policy": {
            "name": verdict.policy_name,
            "digest": verdict.policy_digest,
            "mode": verdict.mode,
            "reasons": [
                {
                    "rule_id": r.rule_id,
                    "effect": r.effect,
                    "severity": r.severity.value,
                    "message": r.message,
                    "evidence": list(r.evidence),
                }
                for r in verdict.reasons
            ],
        },
    }


def render_report(report: ScanReport) -> str:
    """The scan report as one JSON document."""
    return json.dumps(report_document(report), indent=2)


def render_history(scans: Sequence[ScanSummary]) -> str:
    """The history as one JSON document."""
    return json.dumps(
        {
            "scans": [
                {
                    "scan_id": s.scan_id,
                    "target": s.target,
                    "started_at": s.started_at,
                    "status": s.status.value,
                    "decision": s.decision.value,
                    "files": s.file_count,
                    "findings": s.finding_count,
                }
                for s in scans
            ]
        },
        indent=2,
    )
