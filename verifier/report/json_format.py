"""The JSON contract: one document on stdout that scripts and other tools rely on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verifier.model import (
    DeclaredFile,
    FileResult,
    Finding,
    LineageBase,
    LineageStatus,
    Provenance,
    Reupload,
    ScanReport,
    ScanSummary,
    Severity,
    SignatureResult,
    Verdict,
    VerifiedLineage,
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


def signature_document(result: SignatureResult | None) -> dict[str, Any] | None:
    """A signature result as JSON (None for scans recorded before signatures were checked)."""
    if result is None:
        return None
    return {
        "status": result.status.value,
        "method": result.method.value if result.method else None,
        "signer": result.signer,
        "issuer": result.issuer,
        "key_fingerprint": result.key_fingerprint,
        "certificate_subject": result.certificate_subject,
        "key_usage": list(result.key_usage),
        "path": result.path,
        "bundle_sha256": result.bundle_sha256,
        "predicate_type": result.predicate_type,
        "digest_algorithm": result.digest_algorithm,
        "reason": result.reason,
        "diff": {
            "extra": list(result.diff.extra),
            "missing": list(result.diff.missing),
            "changed": list(result.diff.changed),
        },
        "outside": list(result.outside),
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
        "hub_scan_status": _hub_scan_status(provenance.hub_security_status),
        "lineage": {
            "declared": bool(lineage.edges),
            # one entry per declared edge, in the shape the policy's evidence reads
            "ancestors": [
                {
                    "repo_id": e.parent,
                    "commit": e.parent_commit,
                    "relation": e.relation.value,
                    "depth": e.depth,
                    "license": e.parent_license,
                    "child": e.child,
                    "child_commit": e.child_commit,
                    "error": e.error,
                }
                for e in lineage.edges
            ],
            "roots": list(lineage.roots),
            "truncated": lineage.truncated,
            "cycle": lineage.cycle,
        },
    }


def _hub_scan_status(raw: str | None) -> str | None:
    """`clean`, `issues` or `pending` from the Hub's own scan report (corroboration only)."""
    if raw is None:
        return None
    try:
        status = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(status, dict):
        return None
    if status.get("filesWithIssues"):
        return "issues"
    return "clean" if status.get("scansDone") else "pending"


def declared_document(files: Sequence[DeclaredFile] | None) -> list[dict[str, Any]] | None:
    """Declared files as JSON (None for local scans)."""
    if files is None:
        return None
    return [
        {"path": f.path, "size": f.size, "sha256": f.sha256, "git_sha1": f.git_sha1, "lfs": f.lfs}
        for f in files
    ]


def lineage_document(lineage: VerifiedLineage | None) -> dict[str, Any] | None:
    """Lineage verified from the weights, as the facts document, policies and outputs read it."""
    if lineage is None:
        return None
    return {
        "status": lineage.status.value,
        "reason": lineage.reason,
        "declared": list(lineage.declared),
        "declared_matches": lineage.declared_matches,
        "verified_bases": [
            {
                "repo_id": b.repo_id,
                "commit": b.commit,
                "publisher": b.publisher,
                "registered_base": b.registered_base,
                "score": b.score,
                "z": b.z,
                "p_value": b.p_value,
                "near_identical": b.near_identical,
            }
            for b in lineage.verified_bases
        ],
        "related": [
            {
                "repo_id": b.repo_id,
                "commit": b.commit,
                "publisher": b.publisher,
                "score": b.score,
                "z": b.z,
                "near_identical": b.near_identical,
            }
            for b in lineage.related
        ],
        "undeclared_bases": list(lineage.undeclared_bases),
        "mismatched_declared": list(lineage.mismatched_declared),
        "unverifiable_declared": list(lineage.unverifiable_declared),
        "compared": lineage.compared,
        "reupload_of": [
            {"repo_id": r.repo_id, "commit": r.commit, "files": r.files, "score": r.score}
            for r in lineage.reuploads
        ],
    }


def _lineage_base(raw: Any) -> LineageBase | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("repo_id"), str):
        return None

    def number(key: str, default: float) -> float:
        value = raw.get(key)
        return float(value) if isinstance(value, int | float) else default

    commit, publisher = raw.get("commit"), raw.get("publisher")
    return LineageBase(
        repo_id=raw["repo_id"],
        commit=commit if isinstance(commit, str) else None,
        publisher=publisher if isinstance(publisher, str) else None,
        registered_base=raw.get("registered_base") is True,
        score=number("score", 0.0),
        z=number("z", 0.0),
        p_value=number("p_value", 1.0),
        near_identical=raw.get("near_identical") is True,
    )


def parse_lineage_document(raw: object) -> VerifiedLineage | None:
    """`lineage_document` read back (fail-closed: an unknown status reads as unverifiable)."""
    if not isinstance(raw, dict):
        return None

    def texts(key: str) -> tuple[str, ...]:
        value = raw.get(key)
        return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()

    def bases(key: str) -> tuple[LineageBase, ...]:
        value = raw.get(key)
        items = value if isinstance(value, list) else []
        return tuple(b for b in (_lineage_base(item) for item in items) if b is not None)

    try:
        status = LineageStatus(str(raw.get("status")))
    except ValueError:
        status = LineageStatus.UNVERIFIABLE
    matches = raw.get("declared_matches")
    copies = raw.get("reupload_of")
    compared = raw.get("compared")
    return VerifiedLineage(
        status=status,
        reason=str(raw.get("reason") or ""),
        declared=texts("declared"),
        declared_matches=matches if isinstance(matches, bool) else None,
        verified_bases=bases("verified_bases"),
        related=bases("related"),
        undeclared_bases=texts("undeclared_bases"),
        mismatched_declared=texts("mismatched_declared"),
        unverifiable_declared=texts("unverifiable_declared"),
        compared=compared if isinstance(compared, int) else 0,
        reuploads=tuple(
            Reupload(
                c["repo_id"],
                c.get("commit") if isinstance(c.get("commit"), str) else None,
                int(c["files"]) if isinstance(c.get("files"), int) else 0,
                float(c["score"]) if isinstance(c.get("score"), int | float) else None,
            )
            for c in (copies if isinstance(copies, list) else [])
            if isinstance(c, dict) and isinstance(c.get("repo_id"), str)
        ),
    )


def facts_document(report: ScanReport) -> dict[str, Any]:
    """What the scan established, without its decision: the input of the evidence document."""
    counts = {s.value: 0 for s in Severity}
    for finding in report.findings:
        counts[finding.severity.value] += 1
    return {
        "scan_id": report.scan_id,
        "target": report.target,
        "status": report.status.value,
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
        "signature": signature_document(report.signature),
        "findings": [finding_document(f) for f in report.findings],
        "verified_lineage": lineage_document(report.verified_lineage),
        "details": dict(report.details),
    }


def verdict_document(verdict: Verdict) -> dict[str, Any]:
    """A decision as JSON: policy, digest, mode, environment, rules that fired, waivers."""
    return {
        "name": verdict.policy_name,
        "digest": verdict.policy_digest,
        "mode": verdict.mode,
        "environment": verdict.environment,
        "reasons": [
            {
                "rule_id": r.rule_id,
                "effect": r.effect,
                "severity": r.severity.value,
                "message": r.message,
                "evidence": list(r.evidence),
                "waived_by": r.waived_by,
            }
            for r in verdict.reasons
        ],
        "waivers": [
            {
                "id": w.waiver_id,
                "rule": w.rule_id,
                "subject": w.subject,
                "status": w.status,
                "expires": w.expires,
                "approved_by": w.approved_by,
                "ticket": w.ticket,
            }
            for w in verdict.waivers
        ],
    }


def report_document(report: ScanReport) -> dict[str, Any]:
    """The scan report as a JSON-ready dictionary (the documented contract)."""
    facts = facts_document(report)
    document = {key: facts[key] for key in ("scan_id", "target", "status")}
    document["decision"] = report.verdict.decision.value
    # `details` feeds policies (facts_document); the report shows it through other formats.
    document.update(
        {key: value for key, value in facts.items() if key not in document and key != "details"}
    )
    document["policy"] = verdict_document(report.verdict)
    document["approvals"] = [
        {
            "approved_at": a.approved_at,
            "key_fingerprint": a.key_fingerprint,
            "bundle_sha256": a.bundle_sha256,
            "output": a.output,
            "files": a.files,
        }
        for a in report.approvals
    ]
    return document


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
