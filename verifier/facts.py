"""The facts model's versioned document, and the facts derived from it once for every reader.

`verifier.model.ScanFacts` is what a scan established. This module gives:

- its document (`facts_document`, `parse_facts_document`): the layout the JSON output shows
  and policy tests write, versioned by `SCHEMA_VERSION`;
- the facts several readers derive, implemented once: the licence (the source's, else the model
  card's), declared lineage (the source's resolved edges, else the card's `base_model`), the
  Hub's own scan status, the pinned subject;
- `details_from_notes`, the scan's `ModelDetails` from what scanners noted on the one pass.

Parsing is fail-closed: a missing status reads as incomplete, an unknown severity as high, an
unknown format as unknown, an unknown signature status as invalid.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from verifier.model import (
    DeclaredFile,
    FileFormat,
    FileResult,
    Finding,
    Lineage,
    LineageBase,
    LineageEdge,
    LineageRelation,
    LineageStatus,
    ModelCard,
    ModelDetails,
    Provenance,
    Reupload,
    ScanFacts,
    ScanStatus,
    Severity,
    SignatureDiff,
    SignatureMethod,
    SignatureResult,
    SignatureStatus,
    SourceType,
    VerifiedLineage,
    WeightsHeader,
    is_commit_id,
)
from verifier.purl import hub_purl, huggingface_purl

#: Version of the facts document and of the JSON output built on it. 1 was the unversioned
#: layout before; 2 adds `schema_version` and nothing else changes shape; 3 adds
#: `verified_lineage` (null for scans recorded before it).
SCHEMA_VERSION = 3
#: Who declared an ancestor: the source (resolved and pinned) or the model card (neither).
DECLARED_BY_SOURCE = "source"
DECLARED_IN_CARD = "model card"
#: An ancestor no declaration names: the weights derive from it (verified lineage).
FOUND_IN_WEIGHTS = "weights"
#: What the weights say of an ancestor: nothing checked it, they derive from it, or they do not.
CLAIM_DECLARED = "declared"
CLAIM_VERIFIED = "verified"
CLAIM_CONTRADICTED = "contradicted"


@dataclass(frozen=True, kw_only=True)
class Ancestor:
    """One model this model declares it derives from, pinned where the source resolved it."""

    repo_id: str
    commit: str | None = None
    relation: str | None = None
    depth: int = 1
    #: `source` (resolved by the Hub source) or `model card` (front matter only, never pinned).
    declared_in: str = DECLARED_BY_SOURCE
    #: The licence the ancestor's card declares, when the source resolved it.
    license: str | None = None
    #: Why the ancestor could not be resolved to a commit, when it could not.
    error: str | None = None
    #: `declared`, `verified` or `contradicted`: what the weights say (see `lineage_claims`).
    claim: str = CLAIM_DECLARED
    #: The fingerprint score when the weights were compared with this ancestor's.
    score: float | None = None

    @property
    def namespace(self) -> str | None:
        """The publisher part of the repo id, or None when it has none."""
        return self.repo_id.split("/", 1)[0] if "/" in self.repo_id else None

    @property
    def identified(self) -> bool:
        """Whether the ancestor is named and pinned to a commit."""
        return bool(self.repo_id) and self.commit is not None and is_commit_id(self.commit)

    @property
    def purl(self) -> str | None:
        """The ancestor's package URL, when its namespace and name are known."""
        if "/" not in self.repo_id:
            return None
        namespace, name = self.repo_id.split("/", 1)
        return huggingface_purl(namespace, name, self.commit)


# --- facts derived once ------------------------------------------------------------------


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str) and v)
    return ()


def _card_metadata(facts: ScanFacts) -> Mapping[str, Any]:
    card = facts.details.card
    return card.metadata if card is not None else {}


def licence(facts: ScanFacts) -> str | None:
    """The licence id the source declared, else the first one the model card names."""
    if facts.provenance is not None and facts.provenance.license:
        return facts.provenance.license
    names = _texts(_card_metadata(facts).get("license"))
    return names[0] if names else None


def datasets(facts: ScanFacts) -> tuple[str, ...]:
    """Training datasets the source, else the model card, declares."""
    if facts.provenance is not None and facts.provenance.datasets:
        return facts.provenance.datasets
    return _texts(_card_metadata(facts).get("datasets"))


def pipeline_tag(facts: ScanFacts) -> str | None:
    """The task the source, else the model card, declares."""
    if facts.provenance is not None and facts.provenance.pipeline_tag:
        return facts.provenance.pipeline_tag
    return _text(_card_metadata(facts).get("pipeline_tag"))


def ancestors(facts: ScanFacts) -> tuple[Ancestor, ...] | None:
    """Declared lineage: the source's resolved edges, else the model card's `base_model`.

    None when nothing was recorded either way (a local model whose card names no base); an
    empty tuple when the source recorded that no base model is declared.
    """
    if facts.provenance is not None:
        return tuple(
            Ancestor(
                repo_id=edge.parent,
                commit=edge.parent_commit,
                relation=edge.relation.value,
                depth=edge.depth,
                license=edge.parent_license,
                error=edge.error,
            )
            for edge in facts.provenance.lineage.edges
        )
    metadata = _card_metadata(facts)
    if "base_model" not in metadata:
        return None
    relation = _text(metadata.get("base_model_relation"))
    return tuple(
        Ancestor(repo_id=name, relation=relation, declared_in=DECLARED_IN_CARD)
        for name in _texts(metadata.get("base_model"))
    )


def lineage_claims(facts: ScanFacts) -> tuple[Ancestor, ...] | None:
    """Declared ancestors with what the weights say of each, then bases only the weights name.

    A declared ancestor is `verified` when the weights derive from its recorded weights,
    `contradicted` when they were compared and do not, else `declared`. A registered or
    declared base the weights derive from that no declaration names is added at depth 1 with
    relation `verified-base` (`declared_in` is `weights`). None when nothing is known either
    way. Policies (`policy.evidence`) and the evidence formats read lineage through this.
    """
    declared = ancestors(facts)
    verified = facts.verified_lineage
    if verified is None or not (verified.verified_bases or verified.mismatched_declared):
        return declared
    bases = {b.repo_id.lower(): b for b in verified.verified_bases}
    contradicted = {name.lower() for name in verified.mismatched_declared}

    def with_claim(ancestor: Ancestor) -> Ancestor:
        key = ancestor.repo_id.lower()
        if key in bases:
            return replace(ancestor, claim=CLAIM_VERIFIED, score=bases[key].score)
        if key in contradicted:
            return replace(ancestor, claim=CLAIM_CONTRADICTED)
        return ancestor

    claimed = [with_claim(a) for a in declared or ()]
    named = {a.repo_id.lower() for a in claimed}
    claimed += [
        Ancestor(
            repo_id=base.repo_id,
            commit=base.commit,
            relation="verified-base",
            declared_in=FOUND_IN_WEIGHTS,
            claim=CLAIM_VERIFIED,
            score=base.score,
        )
        for key, base in bases.items()
        if key not in named
    ]
    return tuple(claimed)


def hub_scan_status(provenance: Provenance | None) -> str | None:
    """`clean`, `issues` or `pending` from the Hub's own scan report (corroboration only)."""
    raw = provenance.hub_security_status if provenance is not None else None
    if raw is None:
        return None
    try:
        status = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(status, dict):
        return None
    if status.get("filesWithIssues"):
        return "issues"
    return "clean" if status.get("scansDone") else "pending"


def subject_of(source: Mapping[str, str | None]) -> str | None:
    """`hf://repo_id@commit` for a source that names both, else None (what waivers match)."""
    repo_id, commit = source.get("repo_id"), source.get("commit")
    return f"hf://{repo_id}@{commit}" if repo_id and commit else None


def details_from_notes(files: Iterable[FileResult]) -> ModelDetails:
    """The scan's model details from what its scanners noted (see `scanners.facts`)."""
    document: dict[str, Any] = {}
    weights: dict[str, Any] = {}
    for result in files:
        if "config" in result.notes:
            document["config"] = result.notes["config"]
        if "card" in result.notes:
            document["card"] = result.notes["card"]
        if result.notes.get("safetensors") is not None:
            weights[result.path] = result.notes["safetensors"]
    if weights:
        document["safetensors"] = dict(sorted(weights.items()))
    return parse_details(document)


# --- the document -------------------------------------------------------------------------


def finding_document(finding: Finding) -> dict[str, Any]:
    """A finding as JSON."""
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "file": finding.file,
        "member": finding.member,
        "offset": finding.offset,
        "evidence": finding.evidence,
        "message": finding.message,
    }


def file_document(result: FileResult) -> dict[str, Any]:
    """A file the scan read, as JSON."""
    return {
        "path": result.path,
        "size": result.size,
        "sha256": result.sha256,
        "git_sha1": result.git_sha1,
        "format": result.format.value,
        "complete": result.complete,
        "findings": [finding_document(f) for f in result.findings],
    }


def signature_document(result: SignatureResult | None) -> dict[str, Any] | None:
    """A signature result as JSON (None for scans recorded before signatures were checked)."""
    if result is None:
        return None
    return {
        "status": result.status.value,
        "method": result.method.value if result.method else None,
        "signer": result.signer,
        "issuer": result.issuer,
        "key_fingerprint": result.key_fingerprint,
        "certificate_subject": result.certificate_subject,
        "key_usage": list(result.key_usage),
        "path": result.path,
        "bundle_sha256": result.bundle_sha256,
        "predicate_type": result.predicate_type,
        "digest_algorithm": result.digest_algorithm,
        "reason": result.reason,
        "diff": {
            "extra": list(result.diff.extra),
            "missing": list(result.diff.missing),
            "changed": list(result.diff.changed),
        },
        "outside": list(result.outside),
    }


def provenance_document(provenance: Provenance | None) -> dict[str, Any] | None:
    """Provenance as JSON (None for local scans)."""
    if provenance is None:
        return None
    lineage = provenance.lineage
    return {
        "source_type": provenance.source_type.value,
        "purl": hub_purl(provenance.repo_id, provenance.commit),
        "repo_id": provenance.repo_id,
        "namespace": provenance.namespace,
        "commit": provenance.commit,
        "revision_requested": provenance.revision_requested,
        "endpoint": provenance.endpoint,
        "created_at": provenance.created_at,
        "last_modified": provenance.last_modified,
        "gated": provenance.gated,
        "private": provenance.private,
        "license": provenance.license,
        "license_name": provenance.license_name,
        "license_link": provenance.license_link,
        "tags": list(provenance.tags),
        "datasets": list(provenance.datasets),
        "languages": list(provenance.languages),
        "library_name": provenance.library_name,
        "pipeline_tag": provenance.pipeline_tag,
        "base_models": list(provenance.base_models),
        "base_model_relation": provenance.base_model_relation,
        "hub_security_status": provenance.hub_security_status,
        "hub_scan_status": hub_scan_status(provenance),
        "lineage": {
            "declared": bool(lineage.edges),
            "ancestors": [
                {
                    "repo_id": e.parent,
                    "commit": e.parent_commit,
                    "relation": e.relation.value,
                    "depth": e.depth,
                    "license": e.parent_license,
                    "child": e.child,
                    "child_commit": e.child_commit,
                    "error": e.error,
                }
                for e in lineage.edges
            ],
            "roots": list(lineage.roots),
            "truncated": lineage.truncated,
            "cycle": lineage.cycle,
        },
    }


def declared_document(files: Sequence[DeclaredFile] | None) -> list[dict[str, Any]] | None:
    """Declared files as JSON (None for local scans)."""
    if files is None:
        return None
    return [
        {"path": f.path, "size": f.size, "sha256": f.sha256, "git_sha1": f.git_sha1, "lfs": f.lfs}
        for f in files
    ]


def details_document(details: ModelDetails) -> dict[str, Any]:
    """Model details as JSON: `config`, `card` and `safetensors` (by path), each when read."""
    document: dict[str, Any] = {}
    if details.config is not None:
        document["config"] = dict(details.config)
    if details.card is not None:
        card = details.card
        document["card"] = {
            "metadata": dict(card.metadata),
            "headings": list(card.headings),
            "truncated": card.truncated,
        }
        if card.metadata_error is not None:
            document["card"]["metadata_error"] = card.metadata_error
    if details.weights:
        document["safetensors"] = {
            path: {"parameters": w.parameters, "dtypes": list(w.dtypes)}
            for path, w in details.weights.items()
        }
    return document


def lineage_document(lineage: VerifiedLineage | None) -> dict[str, Any] | None:
    """Lineage verified from the weights, as the facts document, policies and outputs read it."""
    if lineage is None:
        return None
    return {
        "status": lineage.status.value,
        "reason": lineage.reason,
        "declared": list(lineage.declared),
        "declared_matches": lineage.declared_matches,
        "verified_bases": [
            {
                "repo_id": b.repo_id,
                "commit": b.commit,
                "publisher": b.publisher,
                "registered_base": b.registered_base,
                "score": b.score,
                "z": b.z,
                "p_value": b.p_value,
                "near_identical": b.near_identical,
            }
            for b in lineage.verified_bases
        ],
        "related": [
            {
                "repo_id": b.repo_id,
                "commit": b.commit,
                "publisher": b.publisher,
                "score": b.score,
                "z": b.z,
                "near_identical": b.near_identical,
            }
            for b in lineage.related
        ],
        "undeclared_bases": list(lineage.undeclared_bases),
        "mismatched_declared": list(lineage.mismatched_declared),
        "unverifiable_declared": list(lineage.unverifiable_declared),
        "compared": lineage.compared,
        "older_version_references": lineage.older_version_references,
        "older_version_bases": list(lineage.older_version_bases),
        "reupload_of": [
            {"repo_id": r.repo_id, "commit": r.commit, "files": r.files, "score": r.score}
            for r in lineage.reuploads
        ],
    }


def facts_document(facts: ScanFacts) -> dict[str, Any]:
    """The facts as their versioned JSON document (the JSON output shows all but `details`)."""
    counts = {s.value: 0 for s in Severity}
    for finding in facts.findings:
        counts[finding.severity.value] += 1
    return {
        "schema_version": SCHEMA_VERSION,
        "scan_id": facts.scan_id,
        "target": facts.target,
        "status": facts.status.value,
        "started_at": facts.started_at,
        "finished_at": facts.finished_at,
        "tool": {"name": "verifier", "version": facts.tool_version},
        "source": dict(facts.source),
        "provenance": provenance_document(facts.provenance),
        "declared_files": declared_document(facts.declared_files),
        "summary": {
            "files": len(facts.files),
            "bytes": sum(f.size for f in facts.files),
            "findings": counts,
        },
        "files": [file_document(f) for f in facts.files],
        "signature": signature_document(facts.signature),
        "findings": [finding_document(f) for f in facts.findings],
        "verified_lineage": lineage_document(facts.verified_lineage),
        "details": details_document(facts.details),
    }


#: Every top-level field of the facts document and of the JSON output built on it.
DOCUMENT_FIELDS = frozenset(
    {
        "schema_version",
        "scan_id",
        "target",
        "status",
        "started_at",
        "finished_at",
        "tool",
        "source",
        "provenance",
        "declared_files",
        "summary",
        "files",
        "signature",
        "findings",
        "verified_lineage",
        "details",
        "decision",
        "policy",
        "approvals",
    }
)


# --- reading a document (policy test cases, facts recorded before schema 2) -------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _int(value: object, default: int | None = None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


_E = TypeVar("_E", bound=enum.Enum)


def _enum(kind: type[_E], value: object, default: _E) -> _E:
    try:
        return kind(value)
    except ValueError:
        return default


def _finding(raw: object) -> Finding:
    item = _mapping(raw)
    return Finding(
        code=_text(item.get("code")) or "UNKNOWN",
        # An unknown severity is treated as high: fail closed.
        severity=_enum(Severity, item.get("severity"), Severity.HIGH),
        message=_text(item.get("message")) or "",
        file=_text(item.get("file")),
        member=_text(item.get("member")),
        offset=_int(item.get("offset")),
        evidence=_text(item.get("evidence")),
    )


def _file(raw: object, findings: tuple[Finding, ...]) -> FileResult:
    item = _mapping(raw)
    path = _text(item.get("path")) or ""
    return FileResult(
        path=path,
        size=_int(item.get("size"), 0) or 0,
        sha256=_text(item.get("sha256")),
        git_sha1=_text(item.get("git_sha1")),
        format=_enum(FileFormat, item.get("format"), FileFormat.UNKNOWN),
        findings=tuple(f for f in findings if f.file == path),
        # Fail closed: an entry that does not say it was read to the end was not (every
        # document written since the first release carries the field).
        complete=item.get("complete") is True,
    )


def _signature(raw: object) -> SignatureResult | None:
    if not isinstance(raw, Mapping):
        return None
    diff = _mapping(raw.get("diff"))
    method = raw.get("method")
    status = raw.get("status")
    return SignatureResult(
        # A status this version does not know is never read as verified.
        status=(
            SignatureStatus.ABSENT
            if status is None
            else _enum(SignatureStatus, status, SignatureStatus.INVALID)
        ),
        reason=_text(raw.get("reason")) or "",
        path=_text(raw.get("path")),
        method=(
            SignatureMethod(method)
            if isinstance(method, str) and method in SignatureMethod.__members__.values()
            else None
        ),
        signer=_text(raw.get("signer")),
        issuer=_text(raw.get("issuer")),
        key_fingerprint=_text(raw.get("key_fingerprint")),
        certificate_subject=_text(raw.get("certificate_subject")),
        key_usage=_texts(raw.get("key_usage")),
        predicate_type=_text(raw.get("predicate_type")),
        digest_algorithm=_text(raw.get("digest_algorithm")),
        diff=SignatureDiff(
            extra=_texts(diff.get("extra")),
            missing=_texts(diff.get("missing")),
            changed=_texts(diff.get("changed")),
        ),
        outside=_texts(raw.get("outside")),
        bundle_sha256=_text(raw.get("bundle_sha256")),
    )


def _lineage(raw: object, *, child: str, child_commit: str) -> Lineage:
    # A list stands for its ancestors (how policy test cases write it).
    item = {"ancestors": raw} if isinstance(raw, list | tuple) else _mapping(raw)
    edges = []
    for entry in _sequence(item.get("ancestors")):
        edge = _mapping(entry)
        edges.append(
            LineageEdge(
                child=_text(edge.get("child")) or child,
                child_commit=_text(edge.get("child_commit")) or child_commit,
                parent=_text(edge.get("repo_id")) or "",
                parent_commit=_text(edge.get("commit")),
                relation=_enum(LineageRelation, edge.get("relation"), LineageRelation.UNKNOWN),
                depth=_int(edge.get("depth"), 1) or 1,
                error=_text(edge.get("error")),
                parent_license=_text(edge.get("license")),
            )
        )
    return Lineage(
        edges=tuple(edges),
        roots=_texts(item.get("roots")),
        truncated=item.get("truncated") is True,
        cycle=item.get("cycle") is True,
    )


def _gated(value: object) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    return _text(value)


def _provenance(raw: object, source: Mapping[str, str]) -> Provenance | None:
    if not isinstance(raw, Mapping):
        return None
    repo_id = _text(raw.get("repo_id")) or source.get("repo_id") or ""
    commit = _text(raw.get("commit")) or source.get("commit") or ""
    private = raw.get("private")
    return Provenance(
        source_type=_enum(SourceType, raw.get("source_type"), SourceType.HUGGINGFACE),
        repo_id=repo_id,
        namespace=_text(raw.get("namespace")) or repo_id.rpartition("/")[0],
        commit=commit,
        revision_requested=(
            _text(raw.get("revision_requested")) or source.get("revision_requested") or ""
        ),
        endpoint=_text(raw.get("endpoint")) or source.get("endpoint") or "",
        created_at=_text(raw.get("created_at")),
        last_modified=_text(raw.get("last_modified")),
        gated=_gated(raw.get("gated")),
        private=private if isinstance(private, bool) else None,
        license=_text(raw.get("license")),
        license_name=_text(raw.get("license_name")),
        license_link=_text(raw.get("license_link")),
        tags=_texts(raw.get("tags")),
        datasets=_texts(raw.get("datasets")),
        languages=_texts(raw.get("languages")),
        library_name=_text(raw.get("library_name")),
        pipeline_tag=_text(raw.get("pipeline_tag")),
        base_models=_texts(raw.get("base_models")),
        base_model_relation=_text(raw.get("base_model_relation")),
        hub_security_status=_text(raw.get("hub_security_status")),
        lineage=_lineage(raw.get("lineage"), child=repo_id, child_commit=commit),
    )


def _declared(raw: object) -> tuple[DeclaredFile, ...] | None:
    if not isinstance(raw, list | tuple):
        return None
    return tuple(
        DeclaredFile(
            path=_text(item.get("path")) or "",
            size=_int(item.get("size"), 0) or 0,
            sha256=_text(item.get("sha256")),
            git_sha1=_text(item.get("git_sha1")),
            lfs=item.get("lfs") is True,
        )
        for item in map(_mapping, raw)
    )


def _lineage_base(raw: object) -> LineageBase | None:
    item = _mapping(raw)
    repo_id = _text(item.get("repo_id"))
    if repo_id is None:
        return None

    def number(key: str, default: float) -> float:
        value = item.get(key)
        return float(value) if isinstance(value, int | float) else default

    return LineageBase(
        repo_id=repo_id,
        commit=_text(item.get("commit")),
        publisher=_text(item.get("publisher")),
        registered_base=item.get("registered_base") is True,
        score=number("score", 0.0),
        z=number("z", 0.0),
        p_value=number("p_value", 1.0),
        near_identical=item.get("near_identical") is True,
    )


def _reupload(raw: object) -> Reupload | None:
    item = _mapping(raw)
    repo_id = _text(item.get("repo_id"))
    if repo_id is None:
        return None
    score = item.get("score")
    return Reupload(
        repo_id,
        _text(item.get("commit")),
        _int(item.get("files"), 0) or 0,
        float(score) if isinstance(score, int | float) else None,
    )


def parse_lineage_document(raw: object) -> VerifiedLineage | None:
    """`lineage_document` read back (fail-closed: an unknown status reads as unverifiable)."""
    if not isinstance(raw, Mapping):
        return None

    def bases(key: str) -> tuple[LineageBase, ...]:
        parsed = (_lineage_base(item) for item in _sequence(raw.get(key)))
        return tuple(b for b in parsed if b is not None)

    matches = raw.get("declared_matches")
    copies = (_reupload(item) for item in _sequence(raw.get("reupload_of")))
    return VerifiedLineage(
        status=_enum(LineageStatus, raw.get("status"), LineageStatus.UNVERIFIABLE),
        reason=_text(raw.get("reason")) or "",
        declared=_texts(raw.get("declared")),
        declared_matches=matches if isinstance(matches, bool) else None,
        verified_bases=bases("verified_bases"),
        related=bases("related"),
        undeclared_bases=_texts(raw.get("undeclared_bases")),
        mismatched_declared=_texts(raw.get("mismatched_declared")),
        unverifiable_declared=_texts(raw.get("unverifiable_declared")),
        compared=_int(raw.get("compared"), 0) or 0,
        older_version_references=_int(raw.get("older_version_references"), 0) or 0,
        older_version_bases=_texts(raw.get("older_version_bases")),
        reuploads=tuple(c for c in copies if c is not None),
    )


def parse_details(raw: object) -> ModelDetails:
    """Model details from their document (what `details_document` writes)."""
    document = _mapping(raw)
    config = document.get("config")
    card = document.get("card")
    weights = {}
    for path, entry in _mapping(document.get("safetensors")).items():
        parameters = _int(_mapping(entry).get("parameters"))
        if parameters is not None:
            weights[str(path)] = WeightsHeader(parameters, _texts(_mapping(entry).get("dtypes")))
    return ModelDetails(
        config=dict(config) if isinstance(config, Mapping) else None,
        card=(
            ModelCard(
                metadata=dict(_mapping(card.get("metadata"))),
                headings=_texts(card.get("headings")),
                truncated=card.get("truncated") is True,
                metadata_error=_text(card.get("metadata_error")),
            )
            if isinstance(card, Mapping)
            else None
        ),
        weights=weights,
    )


def parse_facts_document(document: Mapping[str, Any]) -> ScanFacts:
    """The facts a document gives, any part of it (a policy test case, or facts recorded with an
    earlier schema); what it leaves out reads as unknown, never as a pass.
    """
    source = {str(k): v for k, v in _mapping(document.get("source")).items() if isinstance(v, str)}
    findings = tuple(_finding(f) for f in _sequence(document.get("findings")))
    return ScanFacts(
        scan_id=_text(document.get("scan_id")) or "",
        target=_text(document.get("target")) or "",
        started_at=_text(document.get("started_at")) or "",
        finished_at=_text(document.get("finished_at")) or "",
        tool_version=_text(_mapping(document.get("tool")).get("version")) or "",
        status=_enum(ScanStatus, document.get("status"), ScanStatus.INCOMPLETE),
        files=tuple(_file(f, findings) for f in _sequence(document.get("files"))),
        findings=findings,
        source=source,
        signature=_signature(document.get("signature")),
        provenance=_provenance(document.get("provenance"), source),
        declared_files=_declared(document.get("declared_files")),
        details=parse_details(document.get("details")),
        verified_lineage=parse_lineage_document(document.get("verified_lineage")),
    )
