"""Evidence for reviewers and machines, rendered from a recorded scan (never fetched).

`load_facts` reads what the database holds about one scan; each format renders those facts.
"""

from __future__ import annotations

from typing import assert_never

from verifier import facts as scan_facts
from verifier.errors import MissingExtraError, UsageError
from verifier.evidence import cyclonedx, dossier, dsse, markdown, spdx, vsa
from verifier.evidence.facts import (
    Ancestor,
    EvidenceFacts,
    Publisher,
    SignatureFacts,
    parse_hf_target,
)
from verifier.formats import EvidenceFormat
from verifier.model import ScanReport
from verifier.policy.publishers import PublisherRegistry, shipped_publishers
from verifier.store import Store


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


def _lineage(report: ScanReport, registry: PublisherRegistry) -> tuple[Ancestor, ...] | None:
    declared = scan_facts.lineage_claims(report)
    if declared is None:
        return None
    return tuple(Ancestor(**vars(a), publisher=_publisher(a.namespace, registry)) for a in declared)


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
    namespace = report.provenance.namespace if report.provenance is not None else None
    return EvidenceFacts(
        report=report,
        lineage=_lineage(report, registry),
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
    if fmt is EvidenceFormat.SPDX:
        return spdx.render(facts).encode()
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
