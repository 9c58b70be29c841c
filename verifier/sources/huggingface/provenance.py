"""Provenance of a Hub model: publisher, dates, licence, card metadata and declared lineage."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from verifier.errors import SourceError
from verifier.model import (
    Finding,
    Lineage,
    LineageEdge,
    LineageRelation,
    PinnedRevision,
    Provenance,
    Severity,
    SourceType,
)
from verifier.sources.huggingface.client import HubClient, HubModel

log = logging.getLogger(__name__)

#: How many generations of base models are followed before the lineage is cut short.
MAX_LINEAGE_DEPTH = 8
#: How many parent models are resolved at most in one lineage.
MAX_LINEAGE_MODELS = 64

#: Resolves a repo id to (commit, card data, tags); raises SourceError when it cannot.
ParentResolver = Callable[[str], tuple[str, dict[str, Any], tuple[str, ...]]]


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def card_dict(info: Any) -> dict[str, Any]:
    """The model card's metadata (`cardData`) as a plain dict."""
    card = getattr(info, "card_data", None)
    if card is None:
        return {}
    if isinstance(card, dict):
        return dict(card)
    to_dict = getattr(card, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def declared_parents(
    card: dict[str, Any], tags: tuple[str, ...]
) -> list[tuple[str, LineageRelation]]:
    """The base models a card (or its `base_model:` tags) declares, with their relation."""
    bases = list(_strings(card.get("base_model")))
    relation_text = card.get("base_model_relation")
    tagged: dict[str, str] = {}
    for tag in tags:
        parts = tag.split(":")
        if parts[0] != "base_model" or len(parts) < 2:
            continue
        if len(parts) >= 3 and parts[1] in {r.value for r in LineageRelation}:
            tagged[":".join(parts[2:])] = parts[1]
        else:
            tagged.setdefault(":".join(parts[1:]), "")
    for repo_id in tagged:
        if repo_id not in bases:
            bases.append(repo_id)
    parents = []
    for repo_id in bases:
        text = relation_text if isinstance(relation_text, str) else tagged.get(repo_id) or None
        if text is None and len(bases) > 1:
            text = LineageRelation.MERGE.value  # a list of bases without a relation: a merge
        try:
            relation = LineageRelation(text) if text else LineageRelation.UNKNOWN
        except ValueError:
            relation = LineageRelation.UNKNOWN
        parents.append((repo_id, relation))
    return parents


def resolve_lineage(
    child: str,
    child_commit: str,
    parents: list[tuple[str, LineageRelation]],
    resolver: ParentResolver,
    *,
    max_depth: int = MAX_LINEAGE_DEPTH,
) -> Lineage:
    """Follow declared base models breadth first, pinning each to its commit at scan time.

    A parent that is already on the path from the scanned model is a cycle (recorded, not
    followed); one reached twice through different paths is resolved once.
    """
    edges: list[LineageEdge] = []
    roots: list[str] = []
    commits: dict[str, str | None] = {child: child_commit}
    frontier: list[tuple[str, str, list[tuple[str, LineageRelation]], int, tuple[str, ...]]]
    frontier = [(child, child_commit, parents, 1, (child,))]
    truncated = cycle = False
    while frontier:
        name, commit, declared, depth, path = frontier.pop(0)
        for parent, relation in declared:
            if parent in path:
                cycle = True
                edges.append(LineageEdge(name, commit, parent, None, relation, depth, "cycle"))
                continue
            if parent in commits:  # reached before through another path
                edges.append(LineageEdge(name, commit, parent, commits[parent], relation, depth))
                continue
            if depth > max_depth or len(commits) > MAX_LINEAGE_MODELS:
                truncated = True
                continue
            try:
                parent_commit, card, tags = resolver(parent)
            except SourceError as exc:
                commits[parent] = None
                edges.append(LineageEdge(name, commit, parent, None, relation, depth, str(exc)))
                continue
            commits[parent] = parent_commit
            edges.append(
                LineageEdge(
                    name,
                    commit,
                    parent,
                    parent_commit,
                    relation,
                    depth,
                    parent_license=_text(card.get("license")),
                )
            )
            grand = declared_parents(card, tags)
            if grand:
                frontier.append((parent, parent_commit, grand, depth + 1, (*path, parent)))
            else:
                roots.append(parent)
    return Lineage(edges=tuple(edges), roots=tuple(roots), truncated=truncated, cycle=cycle)


def build_provenance(pinned: PinnedRevision, info: Any, lineage: Lineage) -> Provenance:
    """The provenance record of a resolved Hub model."""
    card = card_dict(info)
    tags = tuple(str(t) for t in (getattr(info, "tags", None) or ()))
    created = getattr(info, "created_at", None)
    modified = getattr(info, "last_modified", None)
    gated = getattr(info, "gated", None)
    security = getattr(info, "security_repo_status", None)
    return Provenance(
        source_type=SourceType.HUGGINGFACE,
        repo_id=pinned.repo_id,
        namespace=pinned.repo_id.split("/", 1)[0],
        commit=pinned.commit,
        revision_requested=pinned.revision_requested,
        endpoint=pinned.endpoint,
        created_at=created.isoformat() if created is not None else None,
        last_modified=modified.isoformat() if modified is not None else None,
        gated=str(gated).lower() if gated is not None else None,
        private=getattr(info, "private", None),
        license=_text(card.get("license")),
        license_name=_text(card.get("license_name")),
        license_link=_text(card.get("license_link")),
        tags=tags,
        datasets=_strings(card.get("datasets")),
        languages=_strings(card.get("language")),
        library_name=_text(card.get("library_name") or getattr(info, "library_name", None)),
        pipeline_tag=_text(card.get("pipeline_tag") or getattr(info, "pipeline_tag", None)),
        base_models=tuple(p for p, _ in declared_parents(card, tags)),
        base_model_relation=_text(card.get("base_model_relation")),
        hub_security_status=json.dumps(security, sort_keys=True) if security else None,
        lineage=lineage,
    )


def hub_lineage(source: HubClient, model: HubModel) -> Lineage:
    """The declared lineage of a resolved model, each parent pinned through `source`."""

    def resolver(repo_id: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
        info = source.model_info(repo_id, None, files=False)
        commit = getattr(info, "sha", None)
        if not isinstance(commit, str):
            raise SourceError(f"{repo_id}: the Hub did not return a commit sha")
        tags = tuple(str(t) for t in (getattr(info, "tags", None) or ()))
        return commit, card_dict(info), tags

    tags = tuple(str(t) for t in (getattr(model.info, "tags", None) or ()))
    parents = declared_parents(card_dict(model.info), tags)
    return resolve_lineage(model.pinned.repo_id, model.pinned.commit, parents, resolver)


def lineage_findings(lineage: Lineage) -> list[Finding]:
    """Findings about the declared lineage: loops, cut-short chains, parents not found."""
    findings = []
    if lineage.cycle:
        findings.append(
            Finding(
                "HF-LINEAGE-CYCLE",
                Severity.MEDIUM,
                "the declared base models form a loop: the lineage cannot be trusted",
            )
        )
    if lineage.truncated:
        findings.append(
            Finding(
                "HF-LINEAGE-TRUNCATED",
                Severity.LOW,
                f"the declared lineage is deeper than {MAX_LINEAGE_DEPTH} generations or "
                f"{MAX_LINEAGE_MODELS} models; it was cut short",
            )
        )
    for edge in lineage.edges:
        if edge.parent_commit is None and edge.error != "cycle":
            findings.append(
                Finding(
                    "HF-LINEAGE-UNRESOLVED",
                    Severity.LOW,
                    f"declared base model {edge.parent} could not be resolved",
                    evidence=edge.error,
                )
            )
    return findings
