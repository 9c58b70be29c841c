"""The JSON contract: one document on stdout that scripts and other tools rely on.

A view of the facts model (`verifier.facts.facts_document`) with the decision added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from verifier.facts import facts_document
from verifier.model import ScanReport, ScanSummary, Verdict


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
    document = {key: facts[key] for key in ("schema_version", "scan_id", "target", "status")}
    document["decision"] = report.verdict.decision.value
    # `details` feeds policies and the evidence formats; the JSON report leaves it out.
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
