"""A short Markdown summary of the same facts, for a pull request or a ticket."""

from __future__ import annotations

import re

from verifier.evidence.facts import NOT_RECORDED, EvidenceFacts
from verifier.evidence.levels import established_levels
from verifier.model import Severity
from verifier.printable import printable

#: Findings listed one by one; the rest are counted.
MAX_LISTED_FINDINGS = 20
_SPECIAL = re.compile(r"([\\`*_\[\]<>|#!~])")


def escape(text: str) -> str:
    """`text` safe inside a Markdown table cell or list item: no markup, no HTML, one line."""
    flat = printable(" ".join(text.split()))
    return _SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def code(text: str) -> str:
    """`text` as inline code, or escaped text when it holds a backtick or a line break."""
    if "`" in text or "|" in text or printable(text) != text:
        return escape(text)
    return f"`{text}`"


def _publisher(facts: EvidenceFacts) -> str:
    pub = facts.publisher
    if pub is None:
        return NOT_RECORDED
    if not pub.identified:
        return f"{code(pub.namespace)}: not in the publisher registry"
    text = f"{escape(pub.legal_entity or '')} ({escape(pub.country or '')})"
    if pub.source:
        text += f", source: {escape(pub.source)}"
    return text


def _lineage(facts: EvidenceFacts) -> str:
    if facts.lineage is None:
        return NOT_RECORDED
    if not facts.lineage:
        return "no base model declared"
    parts = []
    for ancestor in facts.lineage:
        label = code(ancestor.purl or ancestor.repo_id)
        notes = [escape(ancestor.relation)] if ancestor.relation else []
        if ancestor.commit is None:
            notes.append("not pinned")
        if ancestor.declared_in != "source":
            notes.append(f"declared in the {escape(ancestor.declared_in)}")
        parts.append(label + (f" ({', '.join(notes)})" if notes else ""))
    return "; ".join(parts)


def _signature(facts: EvidenceFacts) -> str:
    sig = facts.signature
    if sig is None:
        return NOT_RECORDED
    text = escape(sig.status)
    if sig.method:
        text += f" ({escape(sig.method)})"
    if sig.signer:
        text += f", signer {escape(sig.signer)}"
    return text


def _model(facts: EvidenceFacts) -> str:
    details = facts.details
    if details is None:
        return NOT_RECORDED
    parts = []
    if details.architectures:
        parts.append(escape(", ".join(details.architectures)))
    if details.model_type:
        parts.append(f"type {escape(details.model_type)}")
    if details.parameter_count is not None:
        parts.append(f"{details.parameter_count:,} parameters")
    return "; ".join(parts) or NOT_RECORDED


def render(facts: EvidenceFacts) -> str:
    """The Markdown summary."""
    report, verdict = facts.report, facts.report.verdict
    outcome = "PASSED" if facts.passed else "FAILED"
    levels = ", ".join(code(level.value) for level in established_levels(facts)) or "none"
    rows = [
        ("Model", code(facts.name)),
        ("Package URL", code(facts.purl)),
        ("Revision", code(facts.commit) if facts.commit else NOT_RECORDED),
        ("Scan", f"{code(report.scan_id)}, {escape(report.finished_at)}, {report.status.value}"),
        (
            "Decision",
            f"**{verdict.decision.value}** by policy {code(verdict.policy_name)} "
            f"({escape(verdict.mode)}), {code('sha256:' + verdict.policy_digest)}",
        ),
        ("Publisher", _publisher(facts)),
        ("Licence", escape(facts.license) if facts.license else NOT_RECORDED),
        ("Lineage", _lineage(facts)),
        ("Signature", _signature(facts)),
        ("Architecture", _model(facts)),
        ("Levels", levels),
    ]
    lines = [
        f"## Model verification: {escape(facts.name)}: {outcome}",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    counts = facts.severity_counts()
    summary = ", ".join(
        f"{counts[s.value]} {s.value}" for s in sorted(Severity, key=lambda s: -s.rank)
    )
    lines += [f"### Findings ({summary})", ""]
    listed = [f for _, group in facts.findings_by_severity() for f in group][:MAX_LISTED_FINDINGS]
    for finding in listed:
        where = code(finding.file) if finding.file else "(scan)"
        label = f"**{finding.severity.value}** {code(finding.code)} {where}"
        lines.append(f"- {label}: {escape(finding.message)}")
    if len(report.findings) > len(listed):
        lines.append(f"- ... and {len(report.findings) - len(listed)} more")
    if not report.findings:
        lines.append("No findings.")
    lines += ["", "### Rules fired", ""]
    for reason in verdict.reasons:
        lines.append(
            f"- {escape(reason.effect)} {code(reason.rule_id)} ({reason.severity.value}): "
            f"{escape(reason.message)}"
        )
    if not verdict.reasons:
        lines.append("None.")
    total = sum(f.size for f in report.files)
    lines += ["", f"### Files ({len(report.files)}, {total:,} bytes)", ""]
    lines += ["| file | size | sha256 |", "| --- | ---: | --- |"]
    for f in facts.files:
        lines.append(f"| {code(f.path)} | {f.size:,} | {code(f.sha256 or 'not hashed')} |")
    lines += [
        "",
        f"Generated by verifier {escape(report.tool_version)} from the recorded scan.",
        "",
    ]
    return "\n".join(lines)
