"""Evidence for reviewers and machines, rendered from a recorded scan (never fetched).

`load_facts` reads what the database holds about one scan; each format renders those facts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any, assert_never

from verifier.errors import UsageError
from verifier.evidence import cyclonedx, dsse, markdown, vsa
from verifier.evidence.facts import (
    Ancestor,
    EvidenceFacts,
    ModelDetails,
    Provenance,
    Publisher,
    SignatureFacts,
    parse_hf_target,
)
from verifier.model import ScanReport, ScanStatus
from verifier.policy import build_evidence
from verifier.policy.publishers import PublisherRegistry, shipped_publishers
from verifier.report.json_format import facts_document
from verifier.store import Store


class EvidenceFormat(enum.StrEnum):
    """Formats `verifier report` writes."""

    CYCLONEDX = "cyclonedx"
    VSA = "vsa"
    MARKDOWN = "markdown"


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str) and v)
    return ()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _publisher(facts: Mapping[str, Any] | None) -> Publisher | None:
    if not isinstance(facts, Mapping) or not facts.get("namespace"):
        return None
    return Publisher(
        namespace=str(facts["namespace"]),
        legal_entity=_text(facts.get("legal_entity")),
        country=_text(facts.get("country")),
        source=_text(facts.get("source")),
        reviewed=_text(facts.get("reviewed")),
    )


def _provenance(report: ScanReport, document: Mapping[str, Any]) -> Provenance | None:
    source = report.source
    raw = document.get("provenance")
    prov: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if source.get("type") != "huggingface" and not prov:
        return None
    card = prov.get("card_data")
    card = card if isinstance(card, Mapping) else {}

    def pick(*keys: str) -> Any:
        for key in keys:
            for place in (prov, card):
                if place.get(key) not in (None, "", [], {}):
                    return place[key]
        return None

    licence = pick("license", "licence")
    return Provenance(
        repo_id=_text(source.get("repo_id")) or _text(prov.get("repo_id")),
        commit=_text(source.get("commit")) or _text(prov.get("commit")),
        revision_requested=_text(source.get("revision_requested")),
        endpoint=_text(source.get("endpoint")),
        license=_texts(licence)[0] if _texts(licence) else None,
        license_name=_text(pick("license_name")),
        license_link=_text(pick("license_link")),
        datasets=_texts(pick("datasets")),
        languages=_texts(pick("language", "languages")),
        tags=_texts(prov.get("tags")),
        pipeline_tag=_text(pick("pipeline_tag")),
        library_name=_text(pick("library_name")),
        created_at=_text(prov.get("created_at")),
        last_modified=_text(prov.get("last_modified")),
        gated=str(prov["gated"]) if prov.get("gated") is not None else None,
    )


def _lineage(
    document: Mapping[str, Any], evidence: Mapping[str, Any], details: ModelDetails | None
) -> tuple[Ancestor, ...] | None:
    raw_prov = document.get("provenance")
    recorded = "lineage" in document or (isinstance(raw_prov, Mapping) and "lineage" in raw_prov)
    if recorded:
        return tuple(
            Ancestor(
                repo_id=str(a.get("repo_id") or "(unnamed)"),
                commit=_text(a.get("commit")),
                relation=_text(a.get("relation")),
                depth=int(a.get("depth") or 1),
                publisher=_publisher(a.get("publisher")),
            )
            for a in evidence["lineage"]["ancestors"]
        )
    # Not recorded by the source: what the model card itself declares, unpinned.
    card = details.card if details is not None else None
    if card is None or "base_model" not in card.metadata:
        return None
    relation = card.metadata.get("base_model_relation")
    return tuple(
        Ancestor(
            repo_id=name,
            relation=relation if isinstance(relation, str) else None,
            declared_in="model card",
        )
        for name in _texts(card.metadata.get("base_model"))
    )


def _signature(document: Mapping[str, Any]) -> SignatureFacts | None:
    raw = document.get("signature")
    if not isinstance(raw, Mapping) or not _text(raw.get("status")):
        return None
    return SignatureFacts(
        status=str(raw["status"]),
        method=_text(raw.get("method")),
        signer=_text(raw.get("signer")),
        issuer=_text(raw.get("issuer")),
        bundle_path=_text(raw.get("bundle_path")) or _text(raw.get("path")),
        bundle_sha256=_text(raw.get("bundle_sha256")),
    )


def facts_of(
    report: ScanReport,
    document: Mapping[str, Any] | None = None,
    *,
    publishers: PublisherRegistry | None = None,
) -> EvidenceFacts:
    """The facts of a recorded scan.

    Args:
        report: The scan as recorded.
        document: The scan's recorded facts document (`Store.get_facts`); default: rebuilt
            from `report` (so provenance, lineage and signature are not recorded).
        publishers: The publisher registry (default: the shipped one).
    """
    document = document if document is not None else facts_document(report)
    registry = publishers if publishers is not None else shipped_publishers()
    moment = datetime.fromisoformat(report.finished_at)
    evidence = build_evidence(document, publishers=registry, now=moment)
    details = ModelDetails.from_document(report.details) if report.details else None
    provenance = _provenance(report, document)
    has_namespace = provenance is not None and bool(evidence["model"]["namespace"])
    return EvidenceFacts(
        report=report,
        details=details,
        provenance=provenance,
        lineage=_lineage(document, evidence, details),
        signature=_signature(document),
        publisher=_publisher(evidence["publisher"]) if has_namespace else None,
    )


def load_facts(
    store: Store, target: str, *, publishers: PublisherRegistry | None = None
) -> EvidenceFacts:
    """Everything recorded about TARGET: a scan id (or unique prefix) or `hf://ns/name@commit`.

    Raises:
        NotFoundError: No such scan, or the model at that commit was never scanned.
        UsageError: An ambiguous or too short scan id prefix, or an unpinned `hf://` target.
        StoreError: The database cannot be read.
    """
    if target.startswith("hf://"):
        if parse_hf_target(target) is None:
            raise UsageError(
                f"{target}: reports need a pinned target, hf://namespace/name@<40-hex commit>, "
                "or a scan id"
            )
        target = store.find_scan_by_subject(target)
    report = store.get_scan(target)
    document = None if report.status is ScanStatus.FAILED else store.get_facts(report.scan_id)[1]
    return facts_of(report, document, publishers=publishers)


def render_evidence(
    facts: EvidenceFacts,
    fmt: EvidenceFormat,
    *,
    signing_key: dsse.PrivateKey | None = None,
    verifier_id: str = vsa.DEFAULT_VERIFIER_ID,
) -> bytes:
    """`facts` rendered in `fmt`, as the bytes to write.

    Args:
        facts: What was recorded.
        fmt: The format.
        signing_key: For `vsa`: wrap the statement in a DSSE envelope signed with this key.
        verifier_id: For `vsa`: `predicate.verifier.id`.

    Raises:
        UsageError: A signing key was given for a format that is not signed.
    """
    if signing_key is not None and fmt is not EvidenceFormat.VSA:
        raise UsageError(f"--signing-key signs the vsa format only, not {fmt.value}")
    if fmt is EvidenceFormat.CYCLONEDX:
        return cyclonedx.render(facts).encode()
    if fmt is EvidenceFormat.VSA:
        return vsa.render(facts, signing_key=signing_key, verifier_id=verifier_id).encode()
    if fmt is EvidenceFormat.MARKDOWN:
        return markdown.render(facts).encode()
    assert_never(fmt)


__all__ = ["EvidenceFacts", "EvidenceFormat", "facts_of", "load_facts", "render_evidence"]
