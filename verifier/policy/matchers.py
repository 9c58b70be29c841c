"""Typed matchers over the evidence document: each holds or not, and says what it saw."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from verifier.model import Severity
from verifier.policy.compiled import NODE_MATCHERS, CompiledMatch, LineageScope

Evidence = Mapping[str, Any]


@dataclass(frozen=True)
class Hit:
    """A matcher that held: what it saw, and the files (by path) that evidence is about."""

    lines: tuple[str, ...]
    files: tuple[str, ...] = ()


def _where(finding: Mapping[str, Any]) -> str:
    where = str(finding["file"] or "(scan)")
    if finding.get("member"):
        where += f" [{finding['member']}]"
    return where


def _findings(match: CompiledMatch, ev: Evidence) -> Hit | None:
    selected: Sequence[Mapping[str, Any]] = ev["findings"]
    if match.finding_severity_at_least is not None:
        floor = match.finding_severity_at_least
        selected = [f for f in selected if Severity(f["severity"]).at_least(floor)]
    if match.finding_codes is not None:
        codes = set(match.finding_codes)
        selected = [f for f in selected if f["code"] in codes]
    if match.finding_codes_not_in is not None:
        excluded = set(match.finding_codes_not_in)
        selected = [f for f in selected if f["code"] not in excluded]
    if match.finding_paths is not None:
        selected = [f for f in selected if _path_in(match.finding_paths, f["file"])]
    if match.finding_paths_not_in is not None:
        selected = [f for f in selected if not _path_in(match.finding_paths_not_in, f["file"])]
    if not selected:
        return None
    return Hit(
        tuple(f"{_where(f)}: {f['code']} ({f['severity']})" for f in selected),
        tuple(f["file"] or "" for f in selected),
    )


def _path_in(patterns: Sequence[str], path: str | None) -> bool:
    """Whether a finding's file matches a glob (case-sensitive); scan-level findings never do."""
    return path is not None and any(fnmatch.fnmatchcase(path, p) for p in patterns)


def _formats(ev: Evidence, wanted: set[str], *, inside: bool) -> Hit | None:
    hits = [f for f in ev["files"] if (f["format"] in wanted) == inside]
    if not hits:
        return None
    return Hit(tuple(f"{f['path']}: {f['format']}" for f in hits), tuple(f["path"] for f in hits))


def _flag(name: str, actual: bool, wanted: bool) -> Hit | None:
    return Hit((f"{name}: {str(actual).lower()}",)) if actual == wanted else None


def _in(values: Sequence[str], value: str | None, *, glob: bool = False) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if glob:
        return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in values)
    return lowered in {v.lower() for v in values}


# Model matchers: evaluated on one node (the model, or one ancestor). Unknown values never
# match an `_in` list and always match a `_not_in` list, so allow-lists fail closed.
NodeCheck = Callable[[Any, Mapping[str, Any]], str | None]


def _node_label(node: Mapping[str, Any]) -> str:
    name = node.get("repo_id") or "(local model)"
    if node.get("depth"):
        return f"ancestor {name} ({node.get('relation') or 'base'}, depth {node['depth']})"
    return f"model {name}"


_NODE_CHECKS: dict[str, NodeCheck] = {
    "model_in": lambda v, n: "repo in list" if _in(v, n["repo_id"], glob=True) else None,
    "model_not_in": lambda v, n: None if _in(v, n["repo_id"], glob=True) else "repo not in list",
    "publisher_in": lambda v, n: (
        f"publisher {n['publisher']['namespace']}" if _in(v, n["publisher"]["namespace"]) else None
    ),
    "publisher_not_in": lambda v, n: (
        None
        if _in(v, n["publisher"]["namespace"])
        else f"publisher {n['publisher']['namespace'] or 'unknown'} not in list"
    ),
    "publisher_known": lambda v, n: (
        f"publisher known: {str(n['publisher']['known']).lower()}"
        if n["publisher"]["known"] == v
        else None
    ),
    "jurisdiction_in": lambda v, n: (
        f"publisher country {n['publisher']['country']}"
        if _in(v, n["publisher"]["country"])
        else None
    ),
    "jurisdiction_not_in": lambda v, n: (
        None
        if _in(v, n["publisher"]["country"])
        else f"publisher country {n['publisher']['country'] or 'unknown'} not in list"
    ),
    "licence_in": lambda v, n: f"licence {n['licence']}" if _in(v, n["licence"]) else None,
    "licence_not_in": lambda v, n: (
        None if _in(v, n["licence"]) else f"licence {n['licence'] or 'unknown'} not in list"
    ),
    "licence_known": lambda v, n: (
        f"licence known: {str(v).lower()}" if (n["licence"] is not None) == v else None
    ),
}


def _nodes(ev: Evidence) -> list[Mapping[str, Any]]:
    own = {
        "repo_id": ev["model"]["repo_id"],
        "relation": None,
        "depth": 0,
        "publisher": ev["publisher"],
        "licence": ev["licence"],
    }
    return [own, *ev["lineage"]["ancestors"]]


def _node_hit(checks: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    seen = []
    for name, wanted in checks.items():
        line = _NODE_CHECKS[name](wanted, node)
        if line is None:
            return None
        seen.append(line)
    return f"{_node_label(node)}: " + ", ".join(seen)


def _model_matchers(
    checks: Mapping[str, Any], ev: Evidence, scope: LineageScope | None
) -> Hit | None:
    nodes = _nodes(ev) if scope is not None else _nodes(ev)[:1]
    lines = [_node_hit(checks, node) for node in nodes]
    held = [line for line in lines if line is not None]
    if scope is LineageScope.ALL and len(held) != len(nodes):
        return None
    if not held:
        return None
    return Hit(tuple(held))


def _signature(match: CompiledMatch, ev: Evidence) -> list[Hit | None]:
    sig = ev["signature"]
    verified = sig["status"] == "verified"
    signer = sig["signer"] if verified else None
    results: list[Hit | None] = []
    if match.signature_verified is not None:
        results.append(
            Hit((f"signature: {sig['status']}",)) if verified == match.signature_verified else None
        )
    if match.signer_in is not None:
        ok = _in(match.signer_in, signer, glob=True)
        results.append(Hit((f"signed by {signer}",)) if ok else None)
    if match.signer_not_in is not None:
        ok = not _in(match.signer_not_in, signer, glob=True)
        results.append(Hit((f"signer {signer or '(none verified)'} not in list",)) if ok else None)
    return results


def _age(match: CompiledMatch, ev: Evidence) -> list[Hit | None]:
    age = ev["model"]["age_days"]
    results: list[Hit | None] = []
    if match.model_age_known is not None:
        results.append(_flag("model age known", age is not None, match.model_age_known))
    if match.model_age_days_under is not None:
        ok = age is not None and age < match.model_age_days_under
        results.append(Hit((f"model age {age} days",)) if ok else None)
    if match.model_age_days_over is not None:
        ok = age is not None and age > match.model_age_days_over
        results.append(Hit((f"model age {age} days",)) if ok else None)
    return results


def _provenance(match: CompiledMatch, ev: Evidence) -> list[Hit | None]:
    results: list[Hit | None] = []
    if match.remote_code is not None:
        present = ev["remote_code"]["present"]
        hit = _flag("remote code present", present, match.remote_code)
        if hit is not None and present:
            files = tuple(ev["remote_code"]["files"])
            lines = tuple(f"{path}: code shipped with the model" for path in files)
            # Every file that carries or points at the code: what a waiver has to pin.
            pinned = {*files}
            pinned.update(
                str(f["file"])
                for f in ev["findings"]
                if str(f["code"]).startswith("REMOTE-CODE-") and f.get("file")
            )
            hit = Hit(lines or hit.lines, tuple(sorted(pinned)))
        results.append(hit)
    if match.revision_pinned is not None:
        results.append(_flag("revision pinned", ev["model"]["pinned"], match.revision_pinned))
    if match.hub_scan_status_in is not None:
        status = ev["hub_scan"]["status"]
        ok = status in match.hub_scan_status_in
        results.append(Hit((f"hub scan status: {status}",)) if ok else None)
    if match.model_card is not None:
        results.append(_flag("model card present", ev["model_card"]["present"], match.model_card))
    if match.lineage_declared is not None:
        results.append(_flag("lineage declared", ev["lineage"]["declared"], match.lineage_declared))
    if match.lineage_identified is not None:
        identified = ev["lineage"]["identified"]
        hit = _flag("every ancestor identified", identified, match.lineage_identified)
        if hit is not None and not identified:
            unidentified = [a["repo_id"] or "(unnamed)" for a in ev["lineage"]["ancestors"]]
            hit = Hit(tuple(f"ancestor {name}: no pinned commit" for name in unidentified))
        results.append(hit)
    return results


def evaluate_match(
    match: CompiledMatch, ev: Evidence, *, lineage: LineageScope | None
) -> Hit | None:
    """What the matchers saw when every one of them holds; None when one does not."""
    given = match.given()
    results: list[Hit | None] = []
    if match.scan_incomplete is not None:
        status = ev["scan"]["status"]
        ok = (not ev["scan"]["complete"]) == match.scan_incomplete
        results.append(Hit((f"scan status: {status}",)) if ok else None)
    finding_matchers = (
        match.finding_severity_at_least,
        match.finding_codes,
        match.finding_codes_not_in,
        match.finding_paths,
        match.finding_paths_not_in,
    )
    if any(matcher is not None for matcher in finding_matchers):
        results.append(_findings(match, ev))
    if match.file_formats is not None:
        results.append(_formats(ev, {f.value for f in match.file_formats}, inside=True))
    if match.file_formats_not_in is not None:
        results.append(_formats(ev, {f.value for f in match.file_formats_not_in}, inside=False))
    node_checks = {name: value for name, value in given.items() if name in NODE_MATCHERS}
    if node_checks:
        results.append(_model_matchers(node_checks, ev, lineage))
    results += _signature(match, ev) + _age(match, ev) + _provenance(match, ev)
    if any(result is None for result in results):
        return None
    hits = [result for result in results if result is not None]
    return Hit(
        tuple(line for hit in hits for line in hit.lines),
        tuple(path for hit in hits for path in hit.files),
    )
