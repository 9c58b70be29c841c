"""The evidence document: what rules see, a view of a scan's facts (`model.ScanFacts`).

The output is a plain JSON-ready dict with every field present (unknown facts are null or
false), so rules and CEL expressions never meet a missing key, and a policy that names a field
not listed here is refused when it loads. docs/policy.md documents every field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from verifier import facts as derived
from verifier.model import Provenance, ScanFacts, ScanStatus, is_commit_id
from verifier.policy.compiled import PublisherRegistry

if TYPE_CHECKING:
    from verifier.bans import BanHit

#: Version of the evidence document's layout.
EVIDENCE_VERSION = 1
#: Findings whose code starts with this say the model ships code to run (issue 3 scanners).
REMOTE_CODE_PREFIX = "REMOTE-CODE-"
#: The keys a source may record; the evidence's `source` always holds each (null when unset).
SOURCE_KEYS = (
    "type",
    "root",
    "hf_cache_repo",
    "repo_id",
    "revision_requested",
    "commit",
    "endpoint",
)


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
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


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _lineage(facts: ScanFacts, registry: PublisherRegistry) -> dict[str, Any]:
    """Declared ancestors and bases only the weights name, each with its claim.

    See `verifier.facts.lineage_claims`: a base the weights derive from that the model does
    not declare is an ancestor too (relation `verified-base`), so `lineage: any` rules reach it.
    """
    claimed = derived.lineage_claims(facts) or ()
    ancestors = [
        {
            "repo_id": a.repo_id or None,
            "relation": a.relation,
            "commit": a.commit,
            "depth": a.depth,
            "identified": a.identified,
            "publisher": publisher_facts(a.namespace, registry),
            "licence": _lower(a.license),
            "claim": a.claim,
        }
        for a in claimed
    ]
    return {
        "declared": any(a.declared_in != derived.FOUND_IN_WEIGHTS for a in claimed),
        "identified": all(a["identified"] for a in ancestors),
        "ancestors": ancestors,
    }


def _verified_lineage(facts: ScanFacts) -> dict[str, Any]:
    """What the weights say (see docs/lineage.md); `unknown` status when it was not checked."""
    v = facts.verified_lineage
    if v is None:
        return {
            "status": "unknown",
            "declared_matches": None,
            "verified_bases": [],
            "undeclared_bases": [],
            "mismatched_declared": [],
            "related": [],
            "reupload_of": [],
            "contradicted": False,
        }
    declared = {d.lower() for d in v.declared}
    hidden_copies = [r.label for r in v.reuploads if r.repo_id.lower() not in declared]
    return {
        "status": v.status.value,
        "declared_matches": v.declared_matches,
        "verified_bases": [b.label for b in v.verified_bases],
        "undeclared_bases": list(v.undeclared_bases),
        "mismatched_declared": list(v.mismatched_declared),
        "related": [b.label for b in v.related],
        "reupload_of": [r.label for r in v.reuploads],
        "contradicted": bool(v.undeclared_bases or v.mismatched_declared or hidden_copies),
    }


def _signature(facts: ScanFacts) -> dict[str, Any]:
    sig = facts.signature
    if sig is None:
        return {
            "status": "absent",
            "method": None,
            "signer": None,
            "issuer": None,
            "key_fingerprint": None,
            "diff": None,
        }
    return {
        "status": sig.status.value,
        "method": sig.method.value if sig.method else None,
        "signer": sig.signer,
        "issuer": sig.issuer,
        "key_fingerprint": sig.key_fingerprint,
        "diff": {
            "extra": list(sig.diff.extra),
            "missing": list(sig.diff.missing),
            "changed": list(sig.diff.changed),
        },
    }


def _model(facts: ScanFacts, now: dt.datetime) -> dict[str, Any]:
    source = facts.source
    prov: Provenance | None = facts.provenance
    repo_id = source.get("repo_id") or (prov.repo_id if prov else None) or None
    commit = source.get("commit") or (prov.commit if prov else None) or None
    requested = source.get("revision_requested") or (prov.revision_requested if prov else None)
    created = _parse_time(prov.created_at if prov else None)
    gated = prov.gated if prov else None
    return {
        "repo_id": repo_id,
        "namespace": _namespace(repo_id),
        "revision_requested": requested or None,
        "commit": commit,
        "pinned": commit is not None and requested == commit and is_commit_id(commit),
        "created_at": created.isoformat() if created else None,
        "last_modified": prov.last_modified if prov else None,
        "age_days": (now - created).days if created else None,
        "gated": gated not in (None, "", "false", "False"),
        "tags": list(prov.tags) if prov else [],
    }


def build_evidence(
    facts: ScanFacts,
    *,
    publishers: PublisherRegistry,
    now: dt.datetime,
    bans: Sequence[BanHit] = (),
) -> dict[str, Any]:
    """The evidence document for a scan's facts, with publisher facts from `publishers`.

    `bans` are the organisation's bans that reach this model (`verifier.bans.blast_radius`);
    every one of them denies it, whatever the policy (`policy.engine.decide`).
    Pure and deterministic: the same facts, registry, bans and `now` give the same document.
    """
    files = [
        {
            "path": f.path,
            "size": f.size,
            "sha256": f.sha256,
            "format": f.format.value,
            "complete": f.complete,
        }
        for f in facts.files
    ]
    findings = [
        {
            "code": f.code,
            "severity": f.severity.value,
            "file": f.file,
            "member": f.member,
            "message": f.message,
        }
        for f in facts.findings
    ]
    model = _model(facts, now)
    code_files = sorted(f.path for f in facts.files if f.path.endswith(".py"))
    remote = any(f.code.startswith(REMOTE_CODE_PREFIX) for f in facts.findings)
    details = facts.details
    has_card = details.card is not None or any(f.path.lower() == "readme.md" for f in facts.files)
    auto_map = (details.config or {}).get("auto_map")
    auto_map = [str(name) for name in auto_map] if isinstance(auto_map, list) else []
    worst = max((f.severity for f in facts.findings), key=lambda s: s.rank, default=None)
    return {
        "version": EVIDENCE_VERSION,
        "now": now.astimezone(dt.UTC).isoformat(),
        "subject": {
            "target": facts.target or None,
            "uri": derived.subject_of({"repo_id": model["repo_id"], "commit": model["commit"]}),
        },
        "scan": {
            "id": facts.scan_id or None,
            "status": facts.status.value,
            "complete": facts.status is ScanStatus.COMPLETE,
        },
        "source": {key: facts.source.get(key) for key in SOURCE_KEYS},
        "files": files,
        "formats": sorted({f["format"] for f in files}),
        "findings": findings,
        "max_severity": worst.value if worst is not None else None,
        "model": model,
        "publisher": publisher_facts(model["namespace"], publishers),
        "licence": _lower(derived.licence(facts)),
        "model_card": {"present": has_card},
        "remote_code": {
            "present": bool(code_files or remote or auto_map),
            "files": code_files,
            "auto_map": auto_map,
        },
        "signature": _signature(facts),
        "hub_scan": {"status": derived.hub_scan_status(facts.provenance) or "unknown"},
        "lineage": _lineage(facts, publishers),
        "verified_lineage": _verified_lineage(facts),
        "bans": [hit.document() for hit in bans],
    }
