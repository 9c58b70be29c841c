"""Evidence for reviewers and machines, rendered from a recorded scan (never fetched).

`load_facts` reads what the database holds about one scan; each format renders those facts.
"""

from __future__ import annotations

import enum
from typing import assert_never

from verifier.evidence import cyclonedx, dsse, markdown, vsa
from verifier.evidence.facts import (
    EvidenceFacts,
    ModelDetails,
    Provenance,
    SignatureFacts,
    parse_hf_target,
)
from verifier.model import ScanReport
from verifier.store import Store


class EvidenceFormat(enum.StrEnum):
    """Formats `verifier report` writes."""

    CYCLONEDX = "cyclonedx"
    VSA = "vsa"
    MARKDOWN = "markdown"


def _provenance(report: ScanReport) -> Provenance | None:
    source = report.source
    if source.get("type") != "huggingface":
        return None
    return Provenance(
        repo_id=source.get("repo_id"),
        commit=source.get("commit"),
        revision_requested=source.get("revision_requested"),
        endpoint=source.get("endpoint"),
    )


def _signature(report: ScanReport) -> SignatureFacts | None:
    result = report.signature
    if result is None:
        return None
    bundle = next((f for f in report.files if f.path == result.path), None)
    return SignatureFacts(
        status=result.status.value,
        method=result.method.value if result.method else None,
        signer=result.signer,
        issuer=result.issuer,
        bundle_path=result.path if bundle is not None else None,
        bundle_sha256=bundle.sha256 if bundle is not None else None,
    )


def facts_of(report: ScanReport) -> EvidenceFacts:
    """The facts recorded with the scan itself (no other table consulted)."""
    details = ModelDetails.from_document(report.details) if report.details else None
    return EvidenceFacts(
        report=report,
        details=details,
        provenance=_provenance(report),
        signature=_signature(report),
    )


def load_facts(store: Store, target: str) -> EvidenceFacts:
    """Everything recorded about TARGET: a scan id (or unique prefix) or `hf://ns/name@commit`.

    Raises:
        NotFoundError: No such scan, or the model at that commit was never scanned.
        UsageError: An ambiguous or too short scan id prefix, or an unpinned `hf://` target.
        StoreError: The database cannot be read.
    """
    from verifier.errors import UsageError

    if target.startswith("hf://"):
        pinned = parse_hf_target(target)
        if pinned is None:
            raise UsageError(
                f"{target}: reports need a pinned target, hf://namespace/name@<40-hex commit>, "
                "or a scan id"
            )
        namespace, name, commit = pinned
        report = store.latest_scan_of_revision(f"{namespace}/{name}", commit)
    else:
        report = store.get_scan(target)
    return facts_of(report)


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
        from verifier.errors import UsageError

        raise UsageError(f"--signing-key signs the vsa format only, not {fmt.value}")
    if fmt is EvidenceFormat.CYCLONEDX:
        return cyclonedx.render(facts).encode()
    if fmt is EvidenceFormat.VSA:
        return vsa.render(facts, signing_key=signing_key, verifier_id=verifier_id).encode()
    if fmt is EvidenceFormat.MARKDOWN:
        return markdown.render(facts).encode()
    assert_never(fmt)


__all__ = ["EvidenceFacts", "EvidenceFormat", "facts_of", "load_facts", "render_evidence"]
