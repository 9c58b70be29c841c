"""The evidence document: what rules see, derived from a scan's recorded facts.

The input is the scan report's JSON document (`verifier scan --format json`, or any part of
it): `source`, `files`, `findings`, `status`, and, when the sources and signature checks provide
them, `provenance`, `lineage` and `signature`. The output is a plain JSON-ready dict with every
field present (unknown facts are null or false), so rules and CEL expressions never meet a
missing key. docs/policy.md documents every field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from verifier.model import Severity
from verifier.policy.publishers import PublisherRegistry

COMMIT = re.compile(r"^[0-9a-f]{40}$")
#: Version of the evidence document's layout.
EVIDENCE_VERSION = 1
#: Findings whose code starts with this say the model ships code to run (issue 3 scanners).
REMOTE_CODE_PREFIX = "REMOTE-CODE-"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _plain(value: Any) -> Any:
    """`value` as JSON that CEL can hold: 64-bit integers, everything else as given or as text."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _parse_time(value: Any) -> dt.datetime | None:
    text = _text(value)
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def publisher_facts(namespace: str | None, registry: PublisherRegistry) -> dict[str, Any]:
    """What the registry says about `namespace` (all null, `known: false`, when nothing)."""
    entry = registry.lookup(namespace)
    return {
        "namespace": namespace,
        "known": entry is not None,
        "legal_entity": entry.legal_entity if entry else None,
        "country": entry.country if entry else None,
        "source": entry.source if entry else None,
        "reviewed": entry.reviewed.isoformat() if entry else None,
        "verified": entry.verified if entry else False,
    }


def _namespace(repo_id: str | None) -> str | None:
    if repo_id is None or "/" not in repo_id:
        return None
    return repo_id.split("/", 1)[0]


def _card(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model card's front matter as the scan read it (`details.card.metadata`)."""
    return _mapping(_mapping(_mapping(facts.get("details")).get("card")).get("metadata"))


def _licence(provenance: Mapping[str, Any], card: Mapping[str, Any] | None = None) -> str | None:
    card_data = _mapping(provenance.get("card_data"))
    candidates = (
        provenance.get("licence"),
        provenance.get("license"),
        card_data.get("license"),
        (card or {}).get("license"),
    )
    for value in candidates:
        if isinstance(value, list) and value:
            value = value[0]
        if (text := _text(value)) is not None:
            return text.lower()
    return None


def _ancestor(raw: Any, registry: PublisherRegistry) -> dict[str, Any]:
    item = _mapping(raw) if not isinstance(raw, str) else {"repo_id": raw}
    repo_id = _text(item.get("repo_id")) or _text(item.get("id"))
    commit = _text(item.get("commit"))
    depth = item.get("depth")
    return {
        "repo_id": repo_id,
        "relation": _text(item.get("relation")),
        "commit": commit,
        "depth": depth if isinstance(depth, int) and not isinstance(depth, bool) else 1,
        "identified": repo_id is not None and commit is not None and bool(COMMIT.match(commit)),
        "publisher": publisher_facts(_namespace(repo_id), registry),
        "licence": _licence(item),
    }


def _lineage(facts: Mapping[str, Any], registry: PublisherRegistry) -> dict[str, Any]:
    provenance = _mapping(facts.get("provenance"))
    raw = facts.get("lineage", provenance.get("lineage"))
    declared: bool | None = None
    if isinstance(raw, Mapping):
        declared = raw.get("declared") if isinstance(raw.get("declared"), bool) else None
        raw = raw.get("ancestors")
    if raw is None:
        # No lineage from the source: the card's own declaration, not resolved to commits.
        card = _card(facts)
        bases = card.get("base_model")
        relation = _text(card.get("base_model_relation"))
        names = [bases] if isinstance(bases, str) else list(_sequence(bases))
        raw = [{"repo_id": n, "relation": relation} for n in names if isinstance(n, str) and n]
    ancestors = [_ancestor(item, registry) for item in _sequence(raw)]
    return {
        "declared": declared if declared is not None else bool(ancestors),
        "identified": all(a["identified"] for a in ancestors),
        "ancestors": ancestors,
    }


def _signature(facts: Mapping[str, Any]) -> dict[str, Any]:
    raw = _mapping(facts.get("signature"))
    return {
        "status": _text(raw.get("status")) or "absent",
        "method": _text(raw.get("method")),
        "signer": _text(raw.get("signer")),
        "issuer": _text(raw.get("issuer")),
        "key_fingerprint": _text(raw.get("key_fingerprint")),
        "diff": _plain(raw.get("diff")),
    }


def _files(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    files = []
    for raw in _sequence(facts.get("files")):
        item = _mapping(raw)
        files.append(
            {
                "path": _text(item.get("path")) or "",
                "size": item.get("size") if isinstance(item.get("size"), int) else 0,
                "sha256": _text(item.get("sha256")),
                "format": _text(item.get("format")) or "unknown",
                "complete": item.get("complete") is not False,
            }
        )
    return files


def _findings(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    findings = []
    for raw in _sequence(facts.get("findings")):
        item = _mapping(raw)
        severity = _text(item.get("severity")) or Severity.HIGH.value
        findings.append(
            {
                "code": _text(item.get("code")) or "UNKNOWN",
                # An unknown severity is treated as high: fail closed.
                "severity": severity if severity in Severity.__members__.values() else "high",
                "file": _text(item.get("file")),
                "member": _text(item.get("member")),
                "message": _text(item.get("message")) or "",
            }
        )
    return findings


def _model(facts: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    source = _mapping(facts.get("source"))
    provenance = _mapping(facts.get("provenance"))
    repo_id = _text(source.get("repo_id")) or _text(provenance.get("repo_id"))
    commit = _text(source.get("commit")) or _text(provenance.get("commit"))
    requested = _text(source.get("revision_requested")) or _text(
        provenance.get("revision_requested")
    )
    created = _parse_time(provenance.get("created_at"))
    return {
        "repo_id": repo_id,
        "namespace": _namespace(repo_id),
        "revision_requested": requested,
        "commit": commit,
        "pinned": commit is not None and requested == commit and bool(COMMIT.match(commit)),
        "created_at": created.isoformat() if created else None,
        "last_modified": _text(provenance.get("last_modified")),
        "age_days": (now - created).days if created else None,
        "gated": provenance.get("gated") not in (None, False, "false", "False"),
        "tags": [t for t in _sequence(provenance.get("tags")) if isinstance(t, str)],
    }


def build_evidence(
    facts: Mapping[str, Any], *, publishers: PublisherRegistry, now: dt.datetime
) -> dict[str, Any]:
    """The evidence document for a scan's facts, with publisher facts from `publishers`.

    Pure and deterministic: the same facts, registry and `now` give the same document.
    """
    files = _files(facts)
    findings = _findings(facts)
    model = _model(facts, now)
    provenance = _mapping(facts.get("provenance"))
    source = _plain(dict(_mapping(facts.get("source"))))
    status = _text(facts.get("status")) or "incomplete"
    severities = [Severity(f["severity"]) for f in findings]
    code_files = sorted(f["path"] for f in files if f["path"].endswith(".py"))
    remote_findings = [f for f in findings if f["code"].startswith(REMOTE_CODE_PREFIX)]
    details = _mapping(facts.get("details"))
    has_card = bool(details.get("card")) or any(f["path"].lower() == "readme.md" for f in files)
    auto_map = _sequence(_mapping(details.get("config")).get("auto_map"))
    scan_status = _text(provenance.get("hub_scan_status")) or _text(
        _mapping(provenance.get("security_scan")).get("status")
    )
    uri = (
        f"hf://{model['repo_id']}@{model['commit']}"
        if model["repo_id"] and model["commit"]
        else None
    )
    return {
        "version": EVIDENCE_VERSION,
        "now": now.astimezone(dt.UTC).isoformat(),
        "subject": {"target": _text(facts.get("target")), "uri": uri},
        "scan": {
            "id": _text(facts.get("scan_id")),
            "status": status,
            "complete": status == "complete",
        },
        "source": source,
        "files": files,
        "formats": sorted({f["format"] for f in files}),
        "findings": findings,
        "max_severity": max(severities, key=lambda s: s.rank).value if severities else None,
        "model": model,
        "publisher": publisher_facts(model["namespace"], publishers),
        "licence": _licence(provenance, _card(facts)),
        "model_card": {"present": has_card or bool(provenance.get("model_card"))},
        "remote_code": {
            "present": bool(code_files or remote_findings or auto_map),
            "files": code_files,
            "auto_map": [str(name) for name in auto_map],
        },
        "signature": _signature(facts),
        "hub_scan": {"status": scan_status or "unknown"},
        "lineage": _lineage(facts, publishers),
    }
