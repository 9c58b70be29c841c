"""Human-readable tables (rich), rendered to text for the command line to print."""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from verifier.model import Decision, Provenance, ScanReport, ScanSummary, Severity, Verdict
from verifier.printable import printable
from verifier.purl import hub_purl

_SEVERITY_STYLE = {
    Severity.INFO: "dim",
    Severity.LOW: "cyan",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "red",
    Severity.CRITICAL: "bold red",
}


def _console(buffer: io.StringIO) -> Console:
    # Styled always: the command line keeps the colour for a terminal and strips it for
    # anything else, and honours NO_COLOR (cli._colour).
    width = max(140, shutil.get_terminal_size((140, 24)).columns)
    return Console(
        file=buffer,
        width=width,
        highlight=False,
        soft_wrap=False,
        force_terminal=True,
        color_system="standard",
        no_color=False,
    )


def _cell(value: str) -> Text:
    """A value a model or a file controls, as plain text: no markup, controls escaped."""
    return Text(printable(value))


def _say(console: Console, line: str) -> None:
    """Print one line of recorded values: no markup, controls and bidi characters escaped."""
    console.print(_cell(line))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _print_provenance(console: Console, p: Provenance) -> None:
    """Where a Hub model came from, its declared terms and its declared lineage."""
    purl = hub_purl(p.repo_id, p.commit)
    _say(console, f"source: {purl}  (asked for {p.revision_requested}, {p.endpoint})")
    facts = [
        ("publisher", p.namespace),
        ("created", p.created_at),
        ("last modified", p.last_modified),
        ("gated", p.gated),
        ("licence", p.license_name or p.license),
        ("datasets", ", ".join(p.datasets) or None),
        ("library", p.library_name),
        ("task", p.pipeline_tag),
    ]
    line = "  ".join(f"{name}: {value}" for name, value in facts if value)
    if line:
        _say(console, f"  {line}")
    for edge in p.lineage.edges:
        pinned = edge.parent_commit or f"unresolved ({edge.error})"
        _say(
            console,
            f"  {'  ' * (edge.depth - 1)}{edge.child} -{edge.relation.value}-> "
            f"{edge.parent}@{pinned}",
        )


def render_report(report: ScanReport) -> str:
    """The scan as a file table, a findings table and the decision with its reasons."""
    buffer = io.StringIO()
    console = _console(buffer)
    files = Table(title=_cell(f"{report.target}  (scan {report.scan_id})"), title_justify="left")
    files.add_column("file", overflow="fold")
    files.add_column("format")
    files.add_column("size", justify="right")
    files.add_column("sha256", no_wrap=True, min_width=64)
    files.add_column("findings", justify="right")
    for f in report.files:
        worst = max((x.severity for x in f.findings), key=lambda s: s.rank, default=None)
        label = Text(str(len(f.findings)), style=_SEVERITY_STYLE[worst] if worst else "")
        files.add_row(_cell(f.path), f.format.value, _size(f.size), f.sha256 or "-", label)
    console.print(files)
    if report.provenance is not None:
        _print_provenance(console, report.provenance)
    shown = [f for f in report.findings if f.severity is not Severity.INFO]
    if shown:
        table = Table(title="findings", title_justify="left")
        for column in ("severity", "code", "file", "message"):
            table.add_column(column, overflow="fold")
        for finding in sorted(shown, key=lambda x: -x.severity.rank):
            where = (finding.file or "(scan)") + (f" [{finding.member}]" if finding.member else "")
            table.add_row(
                Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity]),
                _cell(finding.code),
                _cell(where),
                _cell(finding.message),
            )
        console.print(table)
    signature = report.signature
    if signature is not None:
        who = f" by {signature.signer}" if signature.signer else ""
        how = f" ({signature.method.value})" if signature.method else ""
        _say(console, f"signature: {signature.status.value}{who}{how}: {signature.reason}")
    render_verdict(console, report.verdict, status=report.status.value)
    for approval in report.approvals:
        _say(
            console,
            f"approved {approval.approved_at}: {approval.files} files, key sha256:"
            f"{approval.key_fingerprint[:16]}, bundle sha256:{approval.bundle_sha256[:16]} "
            f"written to {approval.output}",
        )
    return buffer.getvalue()


def render_verdict(console: Console, verdict: Verdict, *, status: str) -> None:
    """The decision line, every rule that fired with its evidence, and the waivers."""
    style = "bold green" if verdict.decision is Decision.ALLOW else "bold red"
    env = f", environment {verdict.environment}" if verdict.environment else ""
    console.print(
        Text.assemble(
            ("decision: ", "bold"),
            (verdict.decision.value.upper(), style),
            printable(
                f"  policy {verdict.policy_name} ({verdict.mode}{env}), "
                f"sha256:{verdict.policy_digest[:12]}  status {status}"
            ),
        )
    )
    for reason in verdict.reasons:
        waived = f" (waived by {reason.waived_by})" if reason.waived_by else ""
        _say(console, f"  [{reason.effect}] {reason.rule_id}{waived}: {reason.message}")
        for line in reason.evidence[:5]:
            _say(console, f"      {line}")
    for waiver in verdict.waivers:
        _say(
            console,
            f"  waiver {waiver.waiver_id} ({waiver.rule_id}): {waiver.status}, expires "
            f"{waiver.expires}, approved by {waiver.approved_by}, {waiver.ticket}",
        )


def render_decision(verdict: Verdict, *, target: str, status: str) -> str:
    """A re-decision of a recorded scan."""
    buffer = io.StringIO()
    console = _console(buffer)
    _say(console, f"{target}")
    render_verdict(console, verdict, status=status)
    return buffer.getvalue()


def render_history(scans: Sequence[ScanSummary]) -> str:
    """Recorded scans, newest first."""
    buffer = io.StringIO()
    console = _console(buffer)
    table = Table(title="recorded scans", title_justify="left")
    for column in ("scan id", "started", "target", "status", "decision", "files", "findings"):
        table.add_column(column, overflow="fold")
    for s in scans:
        style = "green" if s.decision is Decision.ALLOW else "red"
        table.add_row(
            s.scan_id,
            s.started_at,
            _cell(s.target),
            s.status.value,
            Text(s.decision.value, style=style),
            str(s.file_count),
            str(s.finding_count),
        )
    console.print(table)
    return buffer.getvalue()
