"""The pure decision: a policy applied to an evidence document."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from verifier.errors import PolicyError
from verifier.model import (
    BAN_RULE_ID,
    Decision,
    RuleOutcome,
    Severity,
    Verdict,
    WaiverOutcome,
)
from verifier.policy.compiled import (
    FILE_SUBJECT,
    PLACEHOLDER,
    CompiledRule,
    CompiledWaiver,
    Effect,
    Policy,
)
from verifier.policy.matchers import Hit, evaluate_match

#: Evidence lines kept per rule outcome; the rest is summarised.
MAX_EVIDENCE = 20
#: Rule id of the reason a ban gives (one per ban that reaches the model).


def render_message(template: str, evidence: Mapping[str, Any]) -> str:
    """The message with `{dotted.path}` placeholders filled from the evidence document."""

    def fill(match: re.Match[str]) -> str:
        value: Any = evidence
        for part in match.group(1).split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return match.group(0)
        if value is None:
            return "unknown"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)

    return PLACEHOLDER.sub(fill, template)


def _fires(rule: CompiledRule, policy: Policy, evidence: Mapping[str, Any]) -> Hit | None:
    hit = evaluate_match(rule.match, evidence, lineage=rule.lineage) if rule.match.given() else None
    if rule.match.given() and hit is None:
        return None
    if rule.when is None:
        return hit
    # The evaluator loads only for a policy whose rules in force have a `when:`.
    from verifier.policy.cel import CelEvaluationError, evaluate

    program = policy.programs[rule.id]
    try:
        held = evaluate(program, evidence)
    except CelEvaluationError as exc:
        where = policy.locations.get(rule.id, policy.source)
        raise PolicyError(f"{where}: rule {rule.id!r}: when: {exc}") from None
    if not held:
        return None
    lines = hit.lines if hit else ()
    return Hit((*lines, f"when: {rule.when.strip()}"), hit.files if hit else ())


def _subject_matches(waiver: CompiledWaiver, hit: Hit, evidence: Mapping[str, Any]) -> bool:
    if FILE_SUBJECT.match(waiver.subject):
        digest = waiver.subject.removeprefix("sha256:")
        by_path = {f["path"]: f["sha256"] for f in evidence["files"]}
        return bool(hit.files) and all(by_path.get(path) == digest for path in hit.files)
    return bool(evidence["subject"]["uri"] == waiver.subject)


def _files_pinned(
    rule_id: str,
    hit: Hit,
    evidence: Mapping[str, Any],
    policy: Policy,
    today: dt.date,
    status: dict[str, str],
) -> str | None:
    """File waivers of one rule that together pin every file the hit names (one per file:
    remote code is several files, each reviewed at its digest). Returns the first waiver's id
    when every file is covered by an unexpired one, and marks them applied."""
    if not hit.files:
        return None
    by_path = {f["path"]: f["sha256"] for f in evidence["files"]}
    wanted = {by_path.get(path) for path in hit.files}
    if None in wanted:
        return None
    covering = [
        w
        for w in policy.waivers
        if w.rule == rule_id
        and FILE_SUBJECT.match(w.subject)
        and w.subject.removeprefix("sha256:") in wanted
    ]
    live = [w for w in covering if w.expires >= today]
    if {w.subject.removeprefix("sha256:") for w in live} != wanted:
        for waiver in covering:
            if waiver.expires < today:
                status[waiver.id] = "expired"
        return None
    for waiver in live:
        status[waiver.id] = "applied"
    return live[0].id


def _concerns(waiver: CompiledWaiver, evidence: Mapping[str, Any]) -> bool:
    if FILE_SUBJECT.match(waiver.subject):
        digest = waiver.subject.removeprefix("sha256:")
        return any(f["sha256"] == digest for f in evidence["files"])
    return bool(evidence["subject"]["uri"] == waiver.subject)


def _outcome(
    rule: CompiledRule, hit: Hit, evidence: Mapping[str, Any], waived_by: str | None
) -> RuleOutcome:
    lines = list(hit.lines)
    if len(lines) > MAX_EVIDENCE:
        lines = [*lines[:MAX_EVIDENCE], f"... and {len(lines) - MAX_EVIDENCE} more"]
    return RuleOutcome(
        rule_id=rule.id,
        effect=rule.effect.value,
        severity=rule.severity,
        message=render_message(rule.message, evidence),
        evidence=tuple(lines),
        waived_by=waived_by,
    )


def _ban_outcomes(evidence: Mapping[str, Any]) -> list[RuleOutcome]:
    """One critical deny per ban that reaches the model (`evidence["bans"]`); never waived."""
    outcomes = []
    for ban in evidence["bans"]:
        lines = [f"ban {ban['ban_id']} by {ban['banned_by']} at {ban['banned_at']}"]
        if ban["relation"] != "named":
            lines.append(f"reached through {ban['relation']} lineage: {' -> '.join(ban['path'])}")
        outcomes.append(
            RuleOutcome(
                rule_id=BAN_RULE_ID,
                effect=Effect.DENY.value,
                severity=Severity.CRITICAL,
                message=f"banned {ban['kind']} {ban['value']}: {ban['reason']}",
                evidence=tuple(lines),
            )
        )
    return outcomes


def decide(evidence: Mapping[str, Any], policy: Policy, *, now: dt.datetime) -> Verdict:
    """Evaluate every rule; an unwaived deny wins over allow, allow over the default.

    A scan that did not complete is never allowed, and a banned model (`evidence["bans"]`)
    is denied with each ban as a reason, whatever the policy says. Deterministic: the same
    evidence, policy and `now` give the same verdict.

    Raises:
        PolicyError: a `when:` expression raised or did not give true or false.
    """
    today = now.astimezone(dt.UTC).date()
    fired: list[RuleOutcome] = []
    waiver_status: dict[str, str] = {}
    for rule in policy.rules:
        hit = _fires(rule, policy, evidence)
        if hit is None:
            continue
        waived_by = None
        for waiver in policy.waivers:
            if waiver.rule != rule.id or not _subject_matches(waiver, hit, evidence):
                continue
            if waiver.expires < today:
                waiver_status[waiver.id] = "expired"
                continue
            waiver_status[waiver.id] = "applied"
            waived_by = waiver.id
            break
        if waived_by is None:
            waived_by = _files_pinned(rule.id, hit, evidence, policy, today, waiver_status)
        fired.append(_outcome(rule, hit, evidence, waived_by))
    effects = {outcome.effect for outcome in fired if outcome.waived_by is None}
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
                    severity=Severity.HIGH,
                    message="no rule allowed this model and the policy's default is deny",
                )
            )
    if not evidence["scan"]["complete"] and decision is Decision.ALLOW:
        decision = Decision.DENY
        fired.append(
            RuleOutcome(
                rule_id="(incomplete-scan)",
                effect=Effect.DENY.value,
                severity=Severity.CRITICAL,
                message="the scan did not check everything, so the model cannot be allowed",
                evidence=(f"scan status: {evidence['scan']['status']}",),
            )
        )
    banned = _ban_outcomes(evidence)
    if banned:
        decision = Decision.DENY
        fired = [*banned, *fired]
    waivers = []
    for waiver in policy.waivers:
        status = waiver_status.get(waiver.id)
        if status is None and _concerns(waiver, evidence):
            status = "expired" if waiver.expires < today else "unused"
        if status is not None:
            waivers.append(
                WaiverOutcome(
                    waiver_id=waiver.id,
                    rule_id=waiver.rule,
                    subject=waiver.subject,
                    status=status,
                    expires=waiver.expires.isoformat(),
                    approved_by=waiver.approved_by,
                    ticket=waiver.ticket,
                )
            )
    return Verdict(
        decision=decision,
        policy_name=policy.name,
        policy_digest=policy.digest(),
        mode=policy.mode.value,
        reasons=tuple(fired),
        environment=policy.environment,
        waivers=tuple(waivers),
    )
