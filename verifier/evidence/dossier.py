"""The procurement dossier: one document per model, as sections both HTML and PDF render."""

from __future__ import annotations

import html
from dataclasses import dataclass

from verifier.evidence.checklist import eu_ai_act_checklist
from verifier.evidence.facts import NOT_RECORDED, Ancestor, EvidenceFacts, Publisher
from verifier.evidence.levels import established_levels
from verifier.printable import printable


@dataclass(frozen=True)
class Table:
    """A table: column headers, rows, and relative column widths (for paper)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    widths: tuple[int, ...]


@dataclass(frozen=True)
class Section:
    """A titled part of the dossier: a note, label/value fields and tables."""

    title: str
    fields: tuple[tuple[str, str], ...] = ()
    tables: tuple[Table, ...] = ()
    note: str | None = None


def _or(value: str | None) -> str:
    return value if value else NOT_RECORDED


def _jurisdiction(publisher: Publisher | None) -> tuple[str, str, str]:
    """(entity, country, source of that fact) as the dossier prints them."""
    if publisher is None:
        return NOT_RECORDED, NOT_RECORDED, NOT_RECORDED
    if not publisher.identified:
        return f"unknown ({publisher.namespace} is not in the publisher registry)", "unknown", "-"
    source = publisher.source or "-"
    if publisher.reviewed:
        source += f" (registry entry reviewed {publisher.reviewed})"
    return publisher.legal_entity or "", publisher.country or "", source


def _identity(facts: EvidenceFacts) -> Section:
    report, prov = facts.report, facts.provenance
    fields = [
        ("Model", facts.name),
        ("Package URL", facts.purl),
        ("Pinned revision (commit)", _or(facts.commit)),
        ("Revision requested", _or(prov.revision_requested if prov else None)),
        ("Source", report.source.get("type", "unknown")),
        ("Endpoint", _or(prov.endpoint if prov else None)),
        (
            "Created / last modified",
            f"{_or(prov.created_at if prov else None)} / "
            f"{_or(prov.last_modified if prov else None)}",
        ),
        ("Hub's own scan (corroboration only)", _or(prov.hub_security_status if prov else None)),
        ("Manifest digest (sha256)", _or(facts.manifest_sha256)),
        ("Scan", f"{report.scan_id}, {report.started_at} to {report.finished_at}"),
        ("Scan status", report.status.value),
        ("Verifier version", report.tool_version),
    ]
    return Section("1. Identity and pinned revision", fields=tuple(fields))


def _publisher(facts: EvidenceFacts) -> Section:
    entity, country, source = _jurisdiction(facts.publisher)
    return Section(
        "2. Publisher and jurisdiction",
        fields=(
            ("Hub namespace", _or(facts.publisher.namespace if facts.publisher else None)),
            ("Legal entity", entity),
            ("Jurisdiction (ISO 3166-1)", country),
            ("Source of this fact", source),
        ),
    )


def _ancestor_row(ancestor: Ancestor) -> tuple[str, ...]:
    entity, country, _ = _jurisdiction(ancestor.publisher)
    commit = ancestor.commit or ("not pinned: " + (ancestor.error or ancestor.declared_in))
    return (
        str(ancestor.depth),
        ancestor.repo_id,
        ancestor.relation or "-",
        commit,
        entity,
        country,
        ancestor.license or NOT_RECORDED,
    )


def _lineage(facts: EvidenceFacts) -> Section:
    title = "3. Lineage"
    if facts.lineage is None:
        return Section(title, note=f"Lineage {NOT_RECORDED}: the source recorded none.")
    if not facts.lineage:
        return Section(title, note="The model declares no base model.")
    prov = facts.provenance
    notes = ["Lineage is self-declared by each model card; nothing on the Hub checks it."]
    if prov is not None and prov.lineage.truncated:
        notes.append("The chain was cut at the depth limit.")
    if prov is not None and prov.lineage.cycle:
        notes.append("The declared chain contains a cycle.")
    if any(a.declared_in != "source" for a in facts.lineage):
        notes.append("Declared in the model card only; not resolved or pinned by a source.")
    table = Table(
        ("depth", "ancestor", "relation", "commit", "publisher", "jurisdiction", "licence"),
        tuple(_ancestor_row(a) for a in facts.lineage),
        (8, 30, 14, 40, 30, 14, 18),
    )
    return Section(title, tables=(table,), note=" ".join(notes))


def _licence_and_signature(facts: EvidenceFacts) -> Section:
    prov, sig = facts.provenance, facts.signature
    fields = [
        ("Licence", _or(facts.license)),
        ("Licence name", _or(prov.license_name if prov else None)),
        ("Licence link", _or(prov.license_link if prov else None)),
        ("Signature status", sig.status if sig else NOT_RECORDED),
    ]
    if sig is not None:
        fields += [
            ("Signature method", _or(sig.method)),
            ("Signer", _or(sig.signer)),
            ("Issuer", _or(sig.issuer)),
            ("Signature bundle", f"{_or(sig.bundle_path)} (sha256 {_or(sig.bundle_sha256)})"),
            ("Signature check", _or(sig.reason)),
        ]
    return Section("4. Licence and signature", fields=tuple(fields))


def _model(facts: EvidenceFacts) -> Section:
    details = facts.details
    if details is None:
        return Section("5. Model", note=f"Model details {NOT_RECORDED}.")
    count = details.parameter_count
    return Section(
        "5. Model",
        fields=(
            ("Architecture", ", ".join(details.architectures) or NOT_RECORDED),
            ("Model type", _or(details.model_type)),
            ("Parameters", f"{count:,}" if count is not None else NOT_RECORDED),
            ("Tensor dtypes", ", ".join(details.tensor_dtypes) or NOT_RECORDED),
            ("Task (pipeline tag)", _or(facts.pipeline_tag)),
            ("Datasets", ", ".join(facts.datasets) or NOT_RECORDED),
        ),
    )


def _files(facts: EvidenceFacts) -> Section:
    rows = tuple(
        (f.path, f.format.value, f"{f.size:,}", f.sha256 or "not hashed") for f in facts.files
    )
    total = sum(f.size for f in facts.files)
    return Section(
        "6. Files and digests",
        tables=(Table(("file", "format", "bytes", "sha256"), rows, (52, 18, 18, 94)),),
        note=f"{len(rows)} files, {total:,} bytes, every byte hashed in one read pass.",
    )


def _findings(facts: EvidenceFacts) -> Section:
    counts = facts.severity_counts()
    summary = ", ".join(f"{n} {name}" for name, n in reversed(counts.items()))
    rows = tuple(
        (
            f.severity.value,
            f.code,
            (f.file or "(scan)") + (f" [{f.member}]" if f.member else ""),
            f.message,
        )
        for _, group in facts.findings_by_severity()
        for f in group
    )
    tables = (Table(("severity", "code", "where", "finding"), rows, (15, 45, 40, 82)),)
    return Section("7. Scan findings by severity", tables=tables if rows else (), note=summary)


def _decision(facts: EvidenceFacts) -> Section:
    verdict = facts.report.verdict
    outcome = "PASSED" if facts.passed else "FAILED"
    rules = tuple(
        (
            r.rule_id,
            r.effect + (f" (waived by {r.waived_by})" if r.waived_by else ""),
            r.severity.value,
            r.message + ("; " + "; ".join(r.evidence[:5]) if r.evidence else ""),
        )
        for r in verdict.reasons
    )
    waivers = tuple(
        (w.waiver_id, w.rule_id, w.status, w.expires, w.approved_by, w.ticket)
        for w in verdict.waivers
    )
    tables = []
    if rules:
        tables.append(Table(("rule", "effect", "severity", "message"), rules, (40, 30, 18, 94)))
    if waivers:
        tables.append(
            Table(
                ("waiver", "rule", "status", "expires", "approved by", "ticket"),
                waivers,
                (30, 34, 18, 24, 40, 36),
            )
        )
    levels = ", ".join(level.value for level in established_levels(facts)) or "none"
    return Section(
        "8. Decision",
        fields=(
            ("Decision", f"{verdict.decision.value} ({outcome})"),
            ("Policy", verdict.policy_name),
            ("Policy digest", f"sha256:{verdict.policy_digest}" if verdict.policy_digest else "-"),
            ("Mode / environment", f"{verdict.mode} / {verdict.environment or '-'}"),
            ("Verification levels", levels),
        ),
        tables=tuple(tables),
        note=None if rules else "No rule fired.",
    )


def _checklist(facts: EvidenceFacts) -> Section:
    rows = tuple((i.label, i.status.value, i.basis) for i in eu_ai_act_checklist(facts))
    return Section(
        "9. EU AI Act checklist (information for downstream deployers)",
        tables=(Table(("information", "status", "found in"), rows, (56, 26, 100)),),
        note=(
            "Present means the information is there to read, from the model card, config.json, "
            "the safetensors headers or the source; whether it is adequate is for the reviewer."
        ),
    )


def sections(facts: EvidenceFacts) -> tuple[Section, ...]:
    """The dossier's sections, in reading order."""
    return (
        _identity(facts),
        _publisher(facts),
        _lineage(facts),
        _licence_and_signature(facts),
        _model(facts),
        _files(facts),
        _findings(facts),
        _decision(facts),
        _checklist(facts),
    )


def title(facts: EvidenceFacts) -> str:
    """The dossier's title line."""
    return f"Model procurement dossier: {facts.name}"


def verdict_line(facts: EvidenceFacts) -> str:
    """The one-line outcome printed under the title."""
    verdict = facts.report.verdict
    outcome = "PASSED" if facts.passed else "FAILED"
    return (
        f"{outcome}: {verdict.decision.value} by policy {verdict.policy_name}, "
        f"scan {facts.report.scan_id} finished {facts.report.finished_at}"
    )


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#111;font-size:14px}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #999;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eee}td{overflow-wrap:anywhere}.fields th{width:28%}
.passed{color:#05620f;font-weight:bold}.failed{color:#a00;font-weight:bold}
.note{color:#444}footer{margin-top:2em;color:#555;font-size:12px}
@media print{body{margin:0;max-width:none}}
"""


def _e(text: str) -> str:
    return html.escape(printable(text), quote=True)


def _html_table(table: Table) -> list[str]:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in table.headers) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in table.rows]
    out.append("</table>")
    return out


def render_html(facts: EvidenceFacts) -> str:
    """The dossier as one self-contained HTML page; every recorded value is escaped."""
    status = "passed" if facts.passed else "failed"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>{_e(title(facts))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title(facts))}</h1>",
        f'<p class="{status}">{_e(verdict_line(facts))}</p>',
    ]
    for section in sections(facts):
        out.append(f"<h2>{_e(section.title)}</h2>")
        if section.note:
            out.append(f'<p class="note">{_e(section.note)}</p>')
        if section.fields:
            out.append('<table class="fields">')
            out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in section.fields]
            out.append("</table>")
        for table in section.tables:
            out += _html_table(table)
    out += [
        f"<footer>Generated by verifier {_e(facts.report.tool_version)} from the recorded scan "
        f"{_e(facts.report.scan_id)}; nothing was fetched to write it. "
        f"&quot;{_e(NOT_RECORDED)}&quot; marks facts the scan did not record.</footer>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(out)
