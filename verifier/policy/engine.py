"""The pure decision: a policy applied to what a scan established."""

from __future__ import annotations

from collections.abc import Sequence

from verifier.model import Decision, FileResult, Finding, RuleOutcome, ScanStatus, Verdict
from verifier.policy.schema import Effect, Match, Policy

#: Evidence lines kept per rule outcome; the rest is summarised.
MAX_EVIDENCE = 20


def _where(finding: Finding) -> str:
    where = finding.file or "(scan)"
    if finding.member:
        where += f" [{finding.member}]"
    return where


def _matches(
    match: Match, files: Sequence[FileResult], findings: Sequence[Finding], status: ScanStatus
) -> list[str] | None:
    """Evidence when every matcher given holds; None when one does not."""
    evidence: list[str] = []
    if match.scan_incomplete is not None:
        incomplete = status is not ScanStatus.COMPLETE
        if incomplete != match.scan_incomplete:
            return None
        evidence.append(f"scan status: {status.value}")
    selected = list(findings)
    finding_matcher = False
    if match.finding_severity_at_least is not None:
        floor = match.finding_severity_at_least
        selected = [f for f in selected if f.severity.at_least(floor)]
        finding_matcher = True
    if match.finding_codes is not None:
        codes = set(match.finding_codes)
        selected = [f for f in selected if f.code in codes]
        finding_matcher = True
    if finding_matcher:
        if not selected:
            return None
        evidence += [f"{_where(f)}: {f.code} ({f.severity.value})" for f in selected]
    if match.file_formats is not None:
        formats = set(match.file_formats)
        hits = [f for f in files if f.format in formats]
        if not hits:
            return None
        evidence += [f"{f.path}: {f.format.value}" for f in hits]
    return evidence


def decide(
    policy: Policy,
    *,
    files: Sequence[FileResult],
    findings: Sequence[Finding],
    status: ScanStatus,
) -> Verdict:
    """Evaluate every rule; an unwaived deny wins over allow, allow over the default.

    A scan that did not complete is never allowed, whatever the policy says.
    """
    fired: list[RuleOutcome] = []
    for rule in policy.rules:
        evidence = _matches(rule.match, files, findings, status)
        if evidence is None:
            continue
        if len(evidence) > MAX_EVIDENCE:
            extra = len(evidence) - MAX_EVIDENCE
            evidence = [*evidence[:MAX_EVIDENCE], f"... and {extra} more"]
        fired.append(
            RuleOutcome(
                rule_id=rule.id,
                effect=rule.effect.value,
                severity=rule.severity,
                message=rule.message,
                evidence=tuple(evidence),
            )
        )
    effects = {outcome.effect for outcome in fired}
    if Effect.DENY.value in effects:
        decision = Decision.DENY
    elif Effect.ALLOW.value in effects:
        decision = Decision.ALLOW
    else:
        decision = Decision.ALLOW if policy.default is Effect.ALLOW else Decision.DENY
        if decision is Decision.DENY:
            fired.append(
                RuleOutcome(
                    rule_id="(default)",
                    effect=Effect.DENY.value,
                    severity=policy.rules[0].severity,
                    message="no rule allowed this model and the policy's default is deny",
                )
            )
    if status is not ScanStatus.COMPLETE and decision is Decision.ALLOW:
        decision = Decision.DENY
        fired.append(
            RuleOutcome(
                rule_id="(incomplete-scan)",
                effect=Effect.DENY.value,
                severity=policy.rules[0].severity,
                message="the scan did not check everything, so the model cannot be allowed",
                evidence=(f"scan status: {status.value}",),
            )
        )
    return Verdict(
        decision=decision,
        policy_name=policy.name,
        policy_digest=policy.digest(),
        mode=policy.mode.value,
        reasons=tuple(fired),
    )
