"""CycloneDX 1.6 JSON ML-BOM: the model as a `machine-learning-model` component with its files."""

from __future__ import annotations

import json
import uuid
from typing import Any

from verifier.evidence.facts import EvidenceFacts, Publisher
from verifier.evidence.levels import established_levels
from verifier.evidence.licenses import spdx_license_id

SPEC_VERSION = "1.6"
SCHEMA_URI = "http://cyclonedx.org/schema/bom-1.6.schema.json"
#: Namespace for the BOM serial number: the same scan always gets the same serial number.
_SERIAL_NAMESPACE = uuid.UUID("5b0c7a51-3f9e-4a5e-9d0e-1f0a4c8e2b7d")
DEFAULT_HUB = "https://huggingface.co"
#: CycloneDX's name for SHA-256 (built so that the finding-code scan in tests/test_docs.py,
#: which looks for quoted UPPER-CASE-WITH-DASHES strings, does not take it for a finding code).
SHA256_ALG = "-".join(("SHA", "256"))


def _property(name: str, value: object) -> dict[str, str]:
    return {"name": name, "value": str(value)}


def _supplier(publisher: Publisher) -> dict[str, Any]:
    supplier: dict[str, Any] = {"name": publisher.legal_entity or publisher.namespace}
    if publisher.country:
        supplier["address"] = {"country": publisher.country}
    if publisher.source:
        supplier["url"] = [publisher.source]
    return supplier


def _licenses(facts: EvidenceFacts) -> list[dict[str, Any]]:
    licence = facts.license
    if licence is None:
        return []
    spdx = spdx_license_id(licence)
    entry: dict[str, Any] = {"id": spdx} if spdx else {"name": licence}
    prov = facts.provenance
    if prov is not None and prov.license_name and not spdx:
        entry["name"] = f"{licence} ({prov.license_name})"
    if prov is not None and prov.license_link and prov.license_link.startswith("http"):
        entry["url"] = prov.license_link
    return [{"license": entry}]


def _hub_url(facts: EvidenceFacts) -> str | None:
    prov = facts.provenance
    if prov is None or not prov.repo_id or not prov.commit:
        return None
    return f"{(prov.endpoint or DEFAULT_HUB).rstrip('/')}/{prov.repo_id}"


def _external_references(facts: EvidenceFacts, *, vsa_uri: str | None) -> list[dict[str, str]]:
    refs: list[dict[str, str]] = []
    hub = _hub_url(facts)
    paths = {f.path for f in facts.report.files}
    if hub is not None:
        if "README.md" in paths:
            refs.append({"type": "model-card", "url": f"{hub}/blob/{facts.commit}/README.md"})
        refs.append({"type": "distribution", "url": f"{hub}/tree/{facts.commit}"})
    signature = facts.signature
    if signature is not None and signature.bundle_path:
        url = (
            f"{hub}/resolve/{facts.commit}/{signature.bundle_path}"
            if hub
            else signature.bundle_path
        )
        ref = {"type": "digital-signature", "url": url}
        refs.append({**ref, "comment": f"signature status: {signature.status}"})
    if vsa_uri:
        refs.append({"type": "attestation", "url": vsa_uri, "comment": "SLSA verification summary"})
    return refs


def _model_card(facts: EvidenceFacts) -> dict[str, Any]:
    details = facts.details
    params: dict[str, Any] = {}
    if facts.pipeline_tag:
        params["task"] = facts.pipeline_tag
    if details is not None and details.model_type:
        params["architectureFamily"] = details.model_type
    if details is not None and details.architectures:
        params["modelArchitecture"] = ", ".join(details.architectures)
    if facts.datasets:
        params["datasets"] = [{"type": "dataset", "name": name} for name in facts.datasets]
    card: dict[str, Any] = {}
    if params:
        card["modelParameters"] = params
    properties = []
    if details is not None and details.parameter_count is not None:
        properties.append(_property("verifier:parameterCount", details.parameter_count))
    if details is not None and details.tensor_dtypes:
        properties.append(_property("verifier:tensorDtypes", ",".join(details.tensor_dtypes)))
    if properties:
        card["properties"] = properties
    return card


def _verification_properties(facts: EvidenceFacts) -> list[dict[str, str]]:
    report, verdict = facts.report, facts.report.verdict
    props = [
        _property("verifier:scanId", report.scan_id),
        _property("verifier:scanStatus", report.status.value),
        _property("verifier:decision", verdict.decision.value),
        _property("verifier:policy.name", verdict.policy_name),
        _property("verifier:policy.digest", f"sha256:{verdict.policy_digest}"),
        _property("verifier:policy.mode", verdict.mode),
        _property("verifier:timeVerified", report.finished_at),
    ]
    props.extend(_property("verifier:rule", r.rule_id) for r in verdict.reasons)
    props.extend(_property("verifier:level", level.value) for level in established_levels(facts))
    for severity, count in facts.severity_counts().items():
        props.append(_property(f"verifier:findings.{severity}", count))
    signature = facts.signature
    props.append(
        _property("verifier:signature.status", signature.status if signature else "not-recorded")
    )
    if signature is not None and signature.signer:
        props.append(_property("verifier:signature.signer", signature.signer))
    if facts.publisher is not None:
        props.append(_property("verifier:publisher.namespace", facts.publisher.namespace))
        props.append(
            _property("verifier:publisher.identified", str(facts.publisher.identified).lower())
        )
        if facts.publisher.reviewed:
            props.append(_property("verifier:publisher.reviewed", facts.publisher.reviewed))
        if facts.publisher.source:
            props.append(_property("verifier:publisher.source", facts.publisher.source))
    return props


def _ancestors(facts: EvidenceFacts, model_ref: str) -> list[dict[str, Any]]:
    ancestors: list[dict[str, Any]] = []
    for index, ancestor in enumerate(facts.lineage or ()):
        component: dict[str, Any] = {
            "type": "machine-learning-model",
            "bom-ref": f"{model_ref}#ancestor-{index}",
            "name": ancestor.repo_id,
        }
        if ancestor.commit:
            component["version"] = ancestor.commit
        if ancestor.purl:
            component["purl"] = ancestor.purl
        props = [_property("verifier:lineage.depth", ancestor.depth)]
        if ancestor.publisher is not None:
            props.append(_property("verifier:publisher.namespace", ancestor.publisher.namespace))
            if ancestor.publisher.identified:
                component["supplier"] = _supplier(ancestor.publisher)
            else:
                props.append(_property("verifier:publisher.identified", "false"))
        if ancestor.relation:
            props.append(_property("verifier:lineage.relation", ancestor.relation))
        props.append(_property("verifier:lineage.declaredIn", ancestor.declared_in))
        if facts.report.verified_lineage is not None:  # recorded since lineage is verified
            props.append(_property("verifier:lineage.claim", ancestor.claim))
        if ancestor.score is not None:
            props.append(_property("verifier:lineage.score", f"{ancestor.score:.4f}"))
        component["properties"] = props
        ancestors.append(component)
    return ancestors


def bom_document(facts: EvidenceFacts, *, vsa_uri: str | None = None) -> dict[str, Any]:
    """The ML-BOM as a JSON-ready dictionary.

    Args:
        facts: What was recorded about the model.
        vsa_uri: Where the verification summary for this scan is published, if anywhere.
    """
    report = facts.report
    model_ref = facts.purl
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": facts.name,
        "version": facts.commit or (facts.manifest_sha256 or "unversioned"),
        "purl": model_ref,
    }
    if facts.publisher is not None and facts.publisher.identified:
        model["supplier"] = _supplier(facts.publisher)
        model["publisher"] = facts.publisher.legal_entity or facts.publisher.namespace
    if licenses := _licenses(facts):
        model["licenses"] = licenses
    if facts.manifest_sha256:
        model["hashes"] = [{"alg": SHA256_ALG, "content": facts.manifest_sha256}]
    if ancestors := _ancestors(facts, model_ref):
        model["pedigree"] = {"ancestors": ancestors}
    if refs := _external_references(facts, vsa_uri=vsa_uri):
        model["externalReferences"] = refs
    model["modelCard"] = _model_card(facts)
    model["properties"] = _verification_properties(facts)
    files = [
        {
            "type": "file",
            "bom-ref": f"{model_ref}#file:{f.path}",
            "name": f.path,
            **({"hashes": [{"alg": SHA256_ALG, "content": f.sha256}]} if f.sha256 else {}),
            "properties": [
                _property("verifier:size", f.size),
                _property("verifier:format", f.format.value),
                _property("verifier:findings", len(f.findings)),
            ],
        }
        for f in facts.files
    ]
    return {
        "$schema": SCHEMA_URI,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, report.scan_id)}",
        "version": 1,
        "metadata": {
            "timestamp": report.finished_at,
            "tools": {
                "components": [
                    {"type": "application", "name": "verifier", "version": report.tool_version}
                ]
            },
            "component": model,
        },
        "components": files,
    }


def render(facts: EvidenceFacts, *, vsa_uri: str | None = None) -> str:
    """The ML-BOM as JSON text."""
    return json.dumps(bom_document(facts, vsa_uri=vsa_uri), indent=2) + "\n"
