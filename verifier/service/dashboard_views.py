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
from typing import Any

from verifier.bans import EstateModel, Relation

#: Inventory columns, in order: (CSV header, key of the row).
INVENTORY_COLUMNS = (
    ("subject", "subject"),
    ("publisher", "publisher"),
    ("legal_entity", "legal_entity"),
    ("jurisdiction", "jurisdiction"),
    ("decision", "decision"),
    ("environment", "environment"),
    ("findings", "findings"),
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
