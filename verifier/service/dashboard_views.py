"""What the dashboard pages show, computed without HTTP: inventory rows, CSV, the lineage graph.

Pure: documents and estate models come in, rows and graph layouts go out. The templates
render them with autoescaping; nothing here writes markup.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from verifier.bans import EstateModel, Relation
from verifier.formats import EvidenceFormat
from verifier.policy import Policy

#: Inventory columns, in order: (CSV header, key of the row).
INVENTORY_COLUMNS = (
    ("subject", "subject"),
    ("publisher", "publisher"),
    ("legal_entity", "legal_entity"),
    ("jurisdiction", "jurisdiction"),
    ("decision", "decision"),
    ("environment", "environment"),
    ("findings", "findings"),
    ("findings_by_severity", "findings_by_severity"),
    ("decisions_by_environment", "decisions_by_environment"),
    ("signature", "signature"),
    ("scanned_at", "scanned_at"),
)
#: Characters that make a spreadsheet read a cell as a formula (or a DDE call).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: Most models one lineage graph draws on either side of the model.
MAX_GRAPH_NODES = 60


def inventory_rows(models: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One flat row of text per model@commit of `Service.inventory`'s `models`."""
    rows = []
    for model in models:
        publisher = model["publisher"]
        rows.append(
            {
                "subject": str(model["subject"]),
                "publisher": str(publisher["namespace"]),
                "legal_entity": str(publisher["legal_entity"] or ""),
                "jurisdiction": str(publisher["jurisdiction"] or ""),
                "decision": str(model["decision"]),
                "environment": str(model["environment"] or ""),
                "findings": str(model["findings"]),
                "findings_by_severity": severity_text(model["findings_by_severity"]),
                "decisions_by_environment": decisions_text(model["decisions"]),
                "signature": str(model["signature"] or "not checked"),
                "scanned_at": str(model["scanned_at"]),
            }
        )
    return rows


def filter_rows(rows: Sequence[dict[str, str]], text: str) -> list[dict[str, str]]:
    """The rows any of whose cells contains `text` (case-insensitive; every row when blank)."""
    needle = text.strip().casefold()
    if not needle:
        return list(rows)
    return [row for row in rows if any(needle in cell.casefold() for cell in row.values())]


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a leading `'` before formula characters."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def inventory_csv(rows: Sequence[dict[str, str]]) -> str:
    """The rows as CSV (RFC 4180 quoting), every cell safe from formula injection."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([header for header, _ in INVENTORY_COLUMNS])
    for row in rows:
        writer.writerow([safe_cell(row[key]) for _, key in INVENTORY_COLUMNS])
    return out.getvalue()


@dataclass(frozen=True)
class GraphNode:
    """A model in a lineage graph: its column (<0 ancestors, 0 the model, >0 descendants)."""

    key: str
    label: str
    depth: int
    #: The recorded model's subject, to link to; None for a model never recorded.
    subject: str | None
    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class GraphEdge:
    """Parent to child, with how the child relates to the parent."""

    parent: str
    child: str
    relation: Relation
    #: Endpoints in the SVG.
    x1: int = 0
    y1: int = 0
    x2: int = 0
    y2: int = 0


@dataclass(frozen=True)
class LineageGraph:
    """A laid-out graph of one model's ancestors and descendants."""

    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]
    width: int
    height: int

    @property
    def ancestors(self) -> tuple[GraphNode, ...]:
        """Ancestor nodes, nearest first."""
        return tuple(sorted((n for n in self.nodes if n.depth < 0), key=lambda n: -n.depth))

    @property
    def descendants(self) -> tuple[GraphNode, ...]:
        """Descendant nodes, nearest first."""
        return tuple(sorted((n for n in self.nodes if n.depth > 0), key=lambda n: n.depth))


NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 270, 34, 50, 16, 10


def _matches(model: EstateModel, repo_id: str, commit: str | None) -> bool:
    same_repo = (model.repo_id or "").lower() == repo_id.lower()
    return same_repo and (commit is None or model.commit is None or model.commit == commit)


def _walk(
    start: EstateModel, estate: Sequence[EstateModel]
) -> tuple[dict[str, GraphNode], list[GraphEdge]]:
    nodes = {start.key: GraphNode(start.key, start.label, 0, start.key)}
    edges: list[GraphEdge] = []
    # Ancestors: follow each model's parent links into the estate (or stop at an unrecorded one).
    queue: deque[tuple[EstateModel, int]] = deque([(start, 0)])
    while queue and len(nodes) < MAX_GRAPH_NODES:
        model, depth = queue.popleft()
        for link in model.parents:
            found = [m for m in estate if _matches(m, link.repo_id, link.commit)]
            targets: list[EstateModel | None] = [*found] or [None]
            for parent in targets:
                key = parent.key if parent else f"{link.repo_id}@{link.commit or '?'}"
                if key not in nodes:
                    label = parent.label if parent else key.removesuffix("@?")
                    subject = parent.key if parent else None
                    nodes[key] = GraphNode(key, label, depth - 1, subject)
                    if parent is not None:
                        queue.append((parent, depth - 1))
                edges.append(GraphEdge(key, model.key, link.relation))
    # Descendants: the recorded models whose parent links name a model already reached.
    queue = deque([(start, 0)])
    while queue and len(nodes) < 2 * MAX_GRAPH_NODES:
        model, depth = queue.popleft()
        for child in estate:
            for link in child.parents:
                if model.repo_id and _matches(model, link.repo_id, link.commit):
                    if child.key not in nodes:
                        nodes[child.key] = GraphNode(child.key, child.label, depth + 1, child.key)
                        queue.append((child, depth + 1))
                    if nodes[child.key].depth > 0:
                        edges.append(GraphEdge(model.key, child.key, link.relation))
    return nodes, edges


def lineage_graph(start: EstateModel, estate: Sequence[EstateModel]) -> LineageGraph:
    """`start`'s ancestors and descendants in the estate, laid out in columns by depth."""
    nodes, edges = _walk(start, estate)
    columns: dict[int, list[GraphNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: n.label):
        columns.setdefault(node.depth, []).append(node)
    low = min(columns)
    placed: dict[str, GraphNode] = {}
    for depth, column in columns.items():
        for row, node in enumerate(column):
            x = MARGIN + (depth - low) * (NODE_WIDTH + COLUMN_GAP)
            y = MARGIN + row * (NODE_HEIGHT + ROW_GAP)
            placed[node.key] = GraphNode(node.key, node.label, depth, node.subject, x, y)
    laid = []
    for edge in dict.fromkeys(edges):
        parent, child = placed[edge.parent], placed[edge.child]
        laid.append(
            GraphEdge(
                edge.parent,
                edge.child,
                edge.relation,
                parent.x + NODE_WIDTH,
                parent.y + NODE_HEIGHT // 2,
                child.x,
                child.y + NODE_HEIGHT // 2,
            )
        )
    tallest = max(len(column) for column in columns.values())
    return LineageGraph(
        nodes=tuple(placed.values()),
        edges=tuple(laid),
        width=2 * MARGIN + len(columns) * NODE_WIDTH + (len(columns) - 1) * COLUMN_GAP,
        height=2 * MARGIN + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP,
    )


def short(label: str, limit: int = 30) -> str:
    """`label` cut to `limit` characters with an ellipsis (the full text goes in a title)."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


#: Severities, worst first, as the inventory shows its counts.
SEVERITIES_WORST_FIRST = ("critical", "high", "medium", "low", "info")
#: Inventory rows on one page.
PAGE_SIZE = 100


def severity_text(counts: Mapping[str, int]) -> str:
    """`2 critical, 1 high`: the non-zero counts, worst first (`none` without findings)."""
    parts = [f"{counts[s]} {s}" for s in SEVERITIES_WORST_FIRST if counts.get(s)]
    return ", ".join(parts) or "none"


def decisions_text(decisions: Iterable[Mapping[str, Any]]) -> str:
    """`production: deny; staging: allow` (`default` for the file's base set)."""
    return "; ".join(
        f"{d['environment'] or 'default'}: {d['decision'] or 'not decided'}" for d in decisions
    )


@dataclass(frozen=True)
class InventoryPage:
    """One page of inventory rows, and where it is among the others (pages count from 1)."""

    rows: list[dict[str, str]]
    number: int
    pages: int
    total: int


def paginate(rows: Sequence[dict[str, str]], page: int, *, size: int = PAGE_SIZE) -> InventoryPage:
    """Page `page` of `rows` (clamped to the pages there are)."""
    pages = max(1, -(-len(rows) // size))
    number = min(max(page, 1), pages)
    start = (number - 1) * size
    return InventoryPage(list(rows[start : start + size]), number, pages, len(rows))


@dataclass(frozen=True)
class WaiverRow:
    """A waiver of the server's policy, with how soon it expires."""

    waiver_id: str
    rule: str
    subject: str
    expires: str
    days_left: int
    approved_by: str
    ticket: str
    justification: str
    #: `expired`, `soon` (within the window) or `later`.
    state: str


def waiver_rows(policies: Iterable[Policy], *, today: date, soon_days: int) -> list[WaiverRow]:
    """Every waiver of `policies` once (by id), soonest expiry first."""
    seen: dict[str, WaiverRow] = {}
    for policy in policies:
        for waiver in policy.waivers:
            days = (waiver.expires - today).days
            state = "expired" if days < 0 else ("soon" if days <= soon_days else "later")
            seen.setdefault(
                waiver.id,
                WaiverRow(
                    waiver_id=waiver.id,
                    rule=waiver.rule,
                    subject=waiver.subject,
                    expires=waiver.expires.isoformat(),
                    days_left=days,
                    approved_by=waiver.approved_by,
                    ticket=waiver.ticket,
                    justification=waiver.justification,
                    state=state,
                ),
            )
    return sorted(seen.values(), key=lambda row: (row.expires, row.waiver_id))


#: The evidence a model page offers to download, with its label (`verifier report` formats).
EVIDENCE_LABELS = (
    (EvidenceFormat.CYCLONEDX, "CycloneDX ML-BOM (JSON)"),
    (EvidenceFormat.SPDX, "SPDX 3.0.1 with the AI profile (JSON-LD)"),
    (EvidenceFormat.VSA, "Verification summary attestation (in-toto statement, unsigned)"),
    (EvidenceFormat.DOSSIER_HTML, "Dossier (HTML)"),
    (EvidenceFormat.DOSSIER_PDF, "Dossier (PDF)"),
    (EvidenceFormat.MARKDOWN, "Summary (Markdown)"),
)
