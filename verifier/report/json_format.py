"""The JSON contract: one document on stdout that scripts and other tools rely on.

A view of the facts model (`verifier.facts.facts_document`) with the decision added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from verifier.facts import facts_document, parse_facts_document
from verifier.formats import JsonDocument
from verifier.model import (
    Approval,
    Decision,
    RuleOutcome,
    ScanReport,
    ScanSummary,
    Severity,
    Verdict,
    WaiverOutcome,
)


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


def parse_verdict_document(raw: object) -> Verdict:
    """The decision `verdict_document` wrote, read back; anything else is a deny.

    A document that is not a decision (or names no decision) reads as deny, never as allow.
    """
    document = raw if isinstance(raw, dict) else {}

    def text(value: object) -> str:
        return value if isinstance(value, str) else ""

    def items(key: str) -> list[dict[str, Any]]:
        value = document.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    reasons = tuple(
        RuleOutcome(
            rule_id=text(r.get("rule_id")),
            effect=text(r.get("effect")),
            severity=Severity(r["severity"])
            if r.get("severity") in set(Severity)
            else Severity.CRITICAL,
            message=text(r.get("message")),
            evidence=tuple(text(e) for e in r.get("evidence") or () if isinstance(e, str)),
            waived_by=r.get("waived_by") if isinstance(r.get("waived_by"), str) else None,
        )
        for r in items("reasons")
    )
    waivers = tuple(
        WaiverOutcome(
            waiver_id=text(w.get("id")),
            rule_id=text(w.get("rule")),
            subject=text(w.get("subject")),
            status=text(w.get("status")),
            expires=text(w.get("expires")),
            approved_by=text(w.get("approved_by")),
            ticket=text(w.get("ticket")),
        )
        for w in items("waivers")
    )
    decision = document.get("decision")
    return Verdict(
        decision=Decision.ALLOW if decision == Decision.ALLOW.value else Decision.DENY,
        policy_name=text(document.get("name")),
        policy_digest=text(document.get("digest")),
        mode=text(document.get("mode")),
        reasons=reasons,
        environment=document.get("environment")
        if isinstance(document.get("environment"), str)
        else None,
        waivers=waivers,
    )


def parse_gate_document(answer: Mapping[str, Any]) -> Verdict:
    """The verdict in the service's gate answer (`GET /api/v1/decision`); a deny unless it
    says allow (see `parse_verdict_document`)."""
    return parse_verdict_document(
        {
            "name": answer.get("policy"),
            "digest": answer.get("policy_digest"),
            "mode": answer.get("mode"),
            "environment": answer.get("environment"),
            "reasons": answer.get("reasons"),
            "waivers": answer.get("waivers"),
            "decision": answer.get("decision"),
        }
    )


def parse_report_document(document: dict[str, Any]) -> ScanReport:
    """A scan document (`report_document`, as the service returns it) read back as a report.

    The decision is the document's top-level `decision` (anything but `allow` reads as deny);
    `details`, which the document leaves out, reads as unknown.
    """
    facts = parse_facts_document(document)
    verdict = parse_verdict_document(
        {**(document.get("policy") or {}), "decision": document.get("decision")}
    )
    approvals = tuple(
        Approval(
            approved_at=str(a.get("approved_at", "")),
            key_fingerprint=str(a.get("key_fingerprint", "")),
            bundle_sha256=str(a.get("bundle_sha256", "")),
            output=str(a.get("output", "")),
            files=int(a.get("files", 0)) if isinstance(a.get("files"), int) else 0,
        )
        for a in document.get("approvals") or ()
        if isinstance(a, dict)
    )
    return ScanReport(**vars(facts), verdict=verdict, approvals=approvals)


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
        JsonDocument.HISTORY.document(
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
            }
        ),
        indent=2,
    )
