"""Evidence for reviewers and machines, rendered from a recorded scan (never fetched).

`load_facts` reads what the database holds about one scan; each format renders those facts.
"""

from __future__ import annotations

from typing import assert_never

from verifier import model
from verifier.errors import MissingExtraError, UsageError
from verifier.evidence import cyclonedx, dossier, dsse, markdown, vsa
from verifier.evidence.facts import (
    Ancestor,
    EvidenceFacts,
    ModelDetails,
    Provenance,
    Publisher,
    SignatureFacts,
    parse_hf_target,
)
from verifier.formats import EvidenceFormat
from verifier.model import ScanReport
from verifier.policy.publishers import PublisherRegistry, shipped_publishers
from verifier.store import Store


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str) and value:
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if isinstance(v, str) and v)
    return ()


def _publisher(namespace: str | None, registry: PublisherRegistry) -> Publisher | None:
    if not namespace:
        return None
    entry = registry.lookup(namespace)
    if entry is None:
        return Publisher(namespace=namespace)
    return Publisher(
        namespace=namespace,
        legal_entity=entry.legal_entity,
        country=entry.country,
        source=entry.source,
        reviewed=entry.reviewed.isoformat(),
    )


def _provenance(recorded: model.Provenance | None) -> Provenance | None:
    if recorded is None:
        return None
    return Provenance(
        repo_id=recorded.repo_id,
        commit=recorded.commit,
        revision_requested=recorded.revision_requested,
        endpoint=recorded.endpoint,
        license=recorded.license,
        license_name=recorded.license_name,
        license_link=recorded.license_link,
        datasets=recorded.datasets,
        languages=recorded.languages,
        tags=recorded.tags,
        pipeline_tag=recorded.pipeline_tag,
        library_name=recorded.library_name,
        created_at=recorded.created_at,
        last_modified=recorded.last_modified,
        gated=recorded.gated,
        hub_security_status=recorded.hub_security_status,
        lineage_truncated=recorded.lineage.truncated,
        lineage_cycle=recorded.lineage.cycle,
    )


def _lineage(
    report: ScanReport, details: ModelDetails | None, registry: PublisherRegistry
) -> tuple[Ancestor, ...] | None:
    if report.provenance is not None:
        return tuple(
            Ancestor(
                repo_id=edge.parent,
                commit=edge.parent_commit,
                relation=edge.relation.value,
                depth=edge.depth,
                publisher=_publisher(
                    edge.parent.split("/", 1)[0] if "/" in edge.parent else None, registry
                ),
                license=edge.parent_license,
                error=edge.error,
            )
            for edge in report.provenance.lineage.edges
        )
    # No source recorded lineage (a local folder): what the model card declares, unpinned.
    card = details.card if details is not None else None
    if card is None or "base_model" not in card.metadata:
        return None
    relation = card.metadata.get("base_model_relation")
    return tuple(
        Ancestor(
            repo_id=name,
            relation=relation if isinstance(relation, str) else None,
            declared_in="model card",
            publisher=_publisher(name.split("/", 1)[0] if "/" in name else None, registry),
        )
        for name in _texts(card.metadata.get("base_model"))
    )


def _signature(report: ScanReport) -> SignatureFacts | None:
    result = report.signature
    if result is None:
        return None
    bundle = next((f for f in report.files if result.path and f.path == result.path), None)
    return SignatureFacts(
        status=result.status.value,
        method=result.method.value if result.method else None,
        signer=result.signer,
        issuer=result.issuer,
        bundle_path=result.path,
        bundle_sha256=bundle.sha256 if bundle is not None else None,
        reason=result.reason,
    )


def facts_of(report: ScanReport, *, publishers: PublisherRegistry | None = None) -> EvidenceFacts:
    """The facts of a recorded scan, with publishers looked up in `publishers`.

    Args:
        report: The scan as recorded (`Store.get_scan`).
        publishers: The publisher registry (default: the shipped `policies/publishers.yaml`).
    """
    registry = publishers if publishers is not None else shipped_publishers()
    details = ModelDetails.from_document(report.details) if report.details else None
    provenance = _provenance(report.provenance)
    namespace = report.provenance.namespace if report.provenance is not None else None
    return EvidenceFacts(
        report=report,
        details=details,
        provenance=provenance,
        lineage=_lineage(report, details, registry),
        signature=_signature(report),
        publisher=_publisher(namespace, registry),
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
    return facts_of(store.get_scan(target), publishers=publishers)


def render_evidence(
    facts: EvidenceFacts,
    fmt: EvidenceFormat,
    *,
    signing_key: dsse.PrivateKey | None = None,
    verifier_id: str = vsa.DEFAULT_VERIFIER_ID,
    vsa_uri: str | None = None,
) -> bytes:
    """`facts` rendered in `fmt`, as the bytes to write.

    Args:
        facts: What was recorded.
        fmt: The format.
        signing_key: For `vsa`: wrap the statement in a DSSE envelope signed with this key.
        verifier_id: For `vsa`: `predicate.verifier.id`.
        vsa_uri: For `cyclonedx`: where the verification summary is published.

    Raises:
        UsageError: A signing key was given for a format that is not signed.
    """
    if signing_key is not None and fmt is not EvidenceFormat.VSA:
        raise UsageError(f"--signing-key signs the vsa format only, not {fmt.value}")
    if fmt is EvidenceFormat.CYCLONEDX:
        return cyclonedx.render(facts, vsa_uri=vsa_uri).encode()
    if fmt is EvidenceFormat.VSA:
        return vsa.render(facts, signing_key=signing_key, verifier_id=verifier_id).encode()
    if fmt is EvidenceFormat.DOSSIER_HTML:
        return dossier.render_html(facts).encode()
    if fmt is EvidenceFormat.DOSSIER_PDF:
        return _render_pdf(facts)
    if fmt is EvidenceFormat.MARKDOWN:
        return markdown.render(facts).encode()
    assert_never(fmt)


def _render_pdf(facts: EvidenceFacts) -> bytes:
    """The dossier as PDF; fpdf2 (the `pdf` extra) loads only here.

    Raises:
        MissingExtraError: fpdf2 is not installed.
    """
    try:
        from verifier.evidence.dossier_pdf import render_pdf
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "fpdf":
            raise  # a missing module of our own is a bug, not a missing extra
        raise MissingExtraError("--format dossier-pdf", extra="pdf") from None
    return render_pdf(facts)


__all__ = ["EvidenceFacts", "EvidenceFormat", "facts_of", "load_facts", "render_evidence"]
