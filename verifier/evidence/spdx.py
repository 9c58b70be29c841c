"""SPDX 3.0.1 JSON-LD with the AI profile: the model as an `ai_AIPackage` with its files.

What it says, each as SPDX 3 models it: the package's identity (name, commit as version, purl,
download location), the SHA-256 of every file (`verifiedUsing`) and of the manifest, the
supplier (an `Organization`, only when the publisher registry identifies one), the declared
licence (`hasDeclaredLicense` to a licence expression), the files (`contains`), the declared
lineage (`descendantOf` each base model the weights do not contradict, with the relation and
what the weights say in the comment; `other` for a declared base they contradict) and the training
data the card declares (`trainedOn`). verifier's own decision has no SPDX property; it is in
the document's and the package's `comment`. Element ids are URNs derived from the scan id, so
the same scan always gives the same document.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from verifier.evidence.facts import Ancestor, EvidenceFacts
from verifier.evidence.licenses import spdx_license_id
from verifier.facts import CLAIM_CONTRADICTED, CLAIM_VERIFIED, FOUND_IN_WEIGHTS

SPEC_VERSION = "3.0.1"
CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
_CREATION_INFO = "_:creationinfo"
#: A licence that is not on the SPDX list becomes `LicenseRef-<name>`: only these characters.
_LICENSE_REF_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _timestamp(stamp: str | None) -> str:
    """An SPDX DateTime: UTC, whole seconds, with a Z (the format the model requires)."""
    moment = datetime.now(UTC)
    if stamp:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _license_expression(licence: str) -> str:
    spdx = spdx_license_id(licence)
    if spdx is not None:
        return spdx
    return "LicenseRef-" + (_LICENSE_REF_UNSAFE.sub("-", licence).strip("-") or "unknown")


class _Graph:
    """The elements of the document, with ids under one URN namespace per scan."""

    def __init__(self, facts: EvidenceFacts) -> None:
        self.base = f"urn:verifier:spdx:{facts.report.scan_id}"
        self.elements: list[dict[str, Any]] = []
        self._relationships = 0

    def add(self, kind: str, local: str, **fields: Any) -> str:
        spdx_id = f"{self.base}:{local}"
        self.elements.append(
            {"type": kind, "spdxId": spdx_id, "creationInfo": _CREATION_INFO, **fields}
        )
        return spdx_id

    def relate(self, source: str, kind: str, targets: list[str], **fields: Any) -> None:
        self._relationships += 1
        self.add(
            "Relationship",
            f"relationship-{self._relationships}",
            **{"from": source, "relationshipType": kind, "to": targets, **fields},
        )


def _verdict_comment(facts: EvidenceFacts) -> str:
    report, verdict = facts.report, facts.report.verdict
    counts = ", ".join(f"{n} {severity}" for severity, n in facts.severity_counts().items())
    return (
        f"verifier scan {report.scan_id}: status {report.status.value}, decision "
        f"{verdict.decision.value} by policy {verdict.policy_name} "
        f"(sha256:{verdict.policy_digest}, mode {verdict.mode}); findings: {counts or 'none'}"
    )


def _package(graph: _Graph, facts: EvidenceFacts, supplier: str | None) -> str:
    package: dict[str, Any] = {
        "name": facts.name,
        "software_packageVersion": facts.commit or facts.manifest_sha256 or "unversioned",
        "software_packageUrl": facts.purl,
        "software_primaryPurpose": "model",
        "comment": _verdict_comment(facts),
    }
    prov = facts.provenance
    if prov is not None and prov.repo_id and facts.commit:
        hub = (prov.endpoint or "https://huggingface.co").rstrip("/")
        package["software_downloadLocation"] = f"{hub}/{prov.repo_id}/tree/{facts.commit}"
    if facts.manifest_sha256:
        package["verifiedUsing"] = [
            {
                "type": "Hash",
                "algorithm": "sha256",
                "hashValue": facts.manifest_sha256,
                "comment": "verifier's manifest digest: SHA-256 over every file's path and "
                "SHA-256 (docs/evidence.md)",
            }
        ]
    if supplier is not None:
        package["suppliedBy"] = supplier
    details = facts.details
    if details is not None and (details.model_type or details.architectures):
        package["ai_typeOfModel"] = [
            t for t in (details.model_type, *details.architectures) if t is not None
        ]
    if facts.pipeline_tag:
        package["ai_domain"] = [facts.pipeline_tag]
    return graph.add("ai_AIPackage", "model", **package)


def _supplier(graph: _Graph, facts: EvidenceFacts) -> str | None:
    publisher = facts.publisher
    if publisher is None or not publisher.identified:
        return None
    fields: dict[str, Any] = {"name": publisher.legal_entity or publisher.namespace}
    if publisher.source:
        fields["externalRef"] = [
            {"type": "ExternalRef", "externalRefType": "altWebPage", "locator": [publisher.source]}
        ]
    if publisher.country:
        fields["comment"] = f"country: {publisher.country}"
    return graph.add("Organization", "supplier", **fields)


def _ancestor(graph: _Graph, index: int, ancestor: Ancestor) -> str:
    fields: dict[str, Any] = {
        "name": ancestor.repo_id,
        "software_primaryPurpose": "model",
    }
    if ancestor.commit:
        fields["software_packageVersion"] = ancestor.commit
    if ancestor.purl:
        fields["software_packageUrl"] = ancestor.purl
    return graph.add("ai_AIPackage", f"ancestor-{index}", **fields)


def _lineage_relationship(ancestor: Ancestor) -> tuple[str, str]:
    """The relationship to one ancestor and its comment, by what the weights say of the claim.

    A declared or verified ancestor is `descendantOf`; one the weights contradict is not
    asserted as an ancestor: the relationship is `other` and its comment says why.
    """
    where = (
        "found in the weights"
        if ancestor.declared_in == FOUND_IN_WEIGHTS
        else f"declared in the {ancestor.declared_in}"
    )
    note = f"{where}, depth {ancestor.depth}"
    if ancestor.relation:
        note = f"{ancestor.relation}; {note}"
    if ancestor.claim == CLAIM_VERIFIED:
        score = f", score {ancestor.score:.4f}" if ancestor.score is not None else ""
        note += f"; verified by weight fingerprint{score}"
    if ancestor.claim == CLAIM_CONTRADICTED:
        return "other", f"{note}; declared descendantOf, contradicted by the weights"
    return "descendantOf", note


def document(facts: EvidenceFacts) -> dict[str, Any]:
    """The SPDX 3.0.1 document as a JSON-ready dictionary."""
    graph = _Graph(facts)
    tool = graph.add("Tool", "tool", name=f"verifier {facts.report.tool_version}")
    agent = graph.add("SoftwareAgent", "agent", name="verifier")
    supplier = _supplier(graph, facts)
    model = _package(graph, facts, supplier)
    files = [
        graph.add(
            "software_File",
            f"file-{index}",
            name=result.path,
            **(
                {
                    "verifiedUsing": [
                        {"type": "Hash", "algorithm": "sha256", "hashValue": result.sha256}
                    ]
                }
                if result.sha256
                else {}
            ),
        )
        for index, result in enumerate(facts.files)
    ]
    if files:
        graph.relate(model, "contains", files)
    if facts.license:
        licence = graph.add(
            "simplelicensing_LicenseExpression",
            "license",
            simplelicensing_licenseExpression=_license_expression(facts.license),
        )
        graph.relate(model, "hasDeclaredLicense", [licence])
    for index, ancestor in enumerate(facts.lineage or ()):
        parent = _ancestor(graph, index, ancestor)
        kind, note = _lineage_relationship(ancestor)
        graph.relate(model, kind, [parent], comment=note)
    datasets = [
        graph.add(
            "dataset_DatasetPackage",
            f"dataset-{index}",
            name=name,
            dataset_datasetType=["noAssertion"],
            software_primaryPurpose="data",
        )
        for index, name in enumerate(facts.datasets)
    ]
    if datasets:
        graph.relate(model, "trainedOn", datasets, comment="declared by the model card")
    spdx_document = {
        "type": "SpdxDocument",
        "spdxId": f"{graph.base}:document",
        "creationInfo": _CREATION_INFO,
        "name": f"verifier evidence for {facts.name}",
        "comment": _verdict_comment(facts),
        "profileConformance": ["core", "software", "ai", "simpleLicensing"]
        + (["dataset"] if datasets else []),
        "rootElement": [model],
        "element": [e["spdxId"] for e in graph.elements],
        "dataLicense": f"{graph.base}:data-license",
    }
    data_license = {
        "type": "simplelicensing_LicenseExpression",
        "spdxId": f"{graph.base}:data-license",
        "creationInfo": _CREATION_INFO,
        "simplelicensing_licenseExpression": "CC0-1.0",
    }
    creation_info = {
        "type": "CreationInfo",
        "@id": _CREATION_INFO,
        "specVersion": SPEC_VERSION,
        "created": _timestamp(facts.report.finished_at),
        "createdBy": [agent],
        "createdUsing": [tool],
    }
    return {
        "@context": CONTEXT,
        "@graph": [creation_info, spdx_document, data_license, *graph.elements],
    }


def render(facts: EvidenceFacts) -> str:
    """The SPDX 3.0.1 JSON-LD document as text."""
    return json.dumps(document(facts), indent=2) + "\n"
