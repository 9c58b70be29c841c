"""SLSA Verification Summary Attestation v1: an in-toto Statement, optionally in a DSSE envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from verifier import bounded_json, formats
from verifier.errors import AttestationError
from verifier.evidence import dsse
from verifier.evidence.facts import EvidenceFacts
from verifier.evidence.levels import established_levels

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
VSA_PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
#: `predicate.verifier.id` unless the organisation names its own deployment (`--verifier-id`).
DEFAULT_VERIFIER_ID = formats.DEFAULT_VERIFIER_ID


def _digest(value: str) -> str:
    return value.split(":", 1)[1] if value.startswith("sha256:") else value


def statement(facts: EvidenceFacts, *, verifier_id: str = DEFAULT_VERIFIER_ID) -> dict[str, Any]:
    """The VSA statement for the recorded scan."""
    report, verdict = facts.report, facts.report.verdict
    subject = [
        {"name": f.path, "digest": {"sha256": f.sha256}}
        for f in facts.files
        if f.sha256 is not None
    ]
    predicate: dict[str, Any] = {
        "verifier": {"id": verifier_id, "version": {"verifier": report.tool_version}},
        "timeVerified": report.finished_at,
        "resourceUri": facts.purl,
        "policy": {"name": verdict.policy_name},
    }
    if verdict.policy_digest:
        predicate["policy"]["digest"] = {"sha256": _digest(verdict.policy_digest)}
    signature = facts.signature
    if signature is not None and signature.bundle_sha256:
        attestation: dict[str, Any] = {"digest": {"sha256": signature.bundle_sha256}}
        if signature.bundle_path:
            attestation["name"] = signature.bundle_path
        predicate["inputAttestations"] = [attestation]
    predicate["verificationResult"] = "PASSED" if facts.passed else "FAILED"
    predicate["verifiedLevels"] = [level.value for level in established_levels(facts)]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": VSA_PREDICATE_TYPE,
        "predicate": predicate,
    }


def render(
    facts: EvidenceFacts,
    *,
    signing_key: dsse.PrivateKey | None = None,
    verifier_id: str = DEFAULT_VERIFIER_ID,
) -> str:
    """The statement as JSON, or with `signing_key` a DSSE envelope holding it."""
    document = statement(facts, verifier_id=verifier_id)
    if signing_key is None:
        return json.dumps(document, indent=2) + "\n"
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(dsse.sign_envelope(payload, signing_key), indent=2) + "\n"


@dataclass(frozen=True)
class VerifiedAttestation:
    """An in-toto statement whose envelope signature verified."""

    predicate_type: str
    statement: dict[str, Any]

    @property
    def result(self) -> str | None:
        """`verificationResult` of a VSA, else None."""
        value = self.statement.get("predicate", {}).get("verificationResult")
        return value if isinstance(value, str) else None

    def summary(self) -> str:
        """One line: what was verified, for whom, with what result."""
        predicate = self.statement.get("predicate", {})
        if self.predicate_type != VSA_PREDICATE_TYPE:
            return f"verified in-toto statement of type {self.predicate_type}"
        levels = ", ".join(str(v) for v in predicate.get("verifiedLevels", [])) or "none"
        return (
            f"verified VSA for {predicate.get('resourceUri')}: {self.result} "
            f"(policy {predicate.get('policy', {}).get('name')}; levels: {levels})"
        )


def verify(data: bytes, key: dsse.PublicKey) -> VerifiedAttestation:
    """Check a DSSE envelope signed by `key` and read the in-toto statement inside.

    Raises:
        AttestationError: The envelope or its signature is invalid, or the payload is not an
            in-toto Statement v1.
    """
    payload = dsse.verify_envelope(data, key)
    try:
        document = bounded_json.loads(payload, bounded_json.TRUST_INPUT)
    except (ValueError, RecursionError):
        raise AttestationError("the signed payload is not JSON") from None
    if not isinstance(document, dict) or document.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"the signed payload is not an in-toto Statement ({STATEMENT_TYPE})")
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not isinstance(document.get("predicate"), dict):
        raise AttestationError("the statement has no predicateType or predicate")
    if not isinstance(document.get("subject"), list):
        raise AttestationError("the statement has no subject list")
    return VerifiedAttestation(predicate_type=predicate_type, statement=document)
