"""Policies and evidence read the signature result: require a verified signature, a signer."""

from __future__ import annotations

from pathlib import Path

from tests.signatures.signing import make_chain, make_model, sign_with_certificate, sign_with_key
from tests.signatures.signing import write_key as _write_key
from verifier.evidence import facts_of
from verifier.evidence.levels import Level, established_levels
from verifier.model import Decision, ScanReport
from verifier.pipeline import scan_target
from verifier.policy.schema import parse_policy
from verifier.signatures.interface import SignatureRequest

POLICY = """
version: 1
name: require-signatures
rules:
  - id: signed
    effect: deny
    severity: high
    message: "A verified signature is required (status: {signature.status})."
    match:
      signature_verified: false
  - id: signed-by-us
    effect: deny
    severity: high
    message: "Signed by {signature.signer}, which is not one of our identities."
    match:
      signature_verified: true
      signer_not_in: ["*@example.org"]
"""


def _scan(model: Path, request: SignatureRequest) -> ScanReport:
    policy = parse_policy(POLICY, source=Path("require-signatures.yaml"))
    return scan_target(str(model), policy=policy, recorder=None, signature=request)


def _chain_request(tmp_path: Path, email: str) -> tuple[Path, SignatureRequest]:
    chain = make_chain(tmp_path, email.split("@")[1], email=email)
    model = make_model(tmp_path / f"model-{email}")
    sign_with_certificate(model, chain)
    return model, SignatureRequest(certificate_chain=((str(chain.root), chain.root.read_bytes()),))


def test_signer_in_the_list_is_allowed_and_evidence_says_signed(tmp_path: Path) -> None:
    model, request = _chain_request(tmp_path, "release@example.org")
    report = _scan(model, request)
    assert report.signature is not None and report.signature.signer == "release@example.org"
    assert report.verdict.decision is Decision.ALLOW, report.verdict.reasons
    levels = established_levels(facts_of(report))
    assert Level.SIGNED_BY_TRUSTED_IDENTITY in levels


def test_signer_outside_the_list_is_denied(tmp_path: Path) -> None:
    model, request = _chain_request(tmp_path, "someone@elsewhere.com")
    report = _scan(model, request)
    assert report.verdict.decision is Decision.DENY
    assert [r.rule_id for r in report.verdict.reasons] == ["signed-by-us"]


def test_unverified_signature_is_denied_by_the_policy(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model")
    private, _ = _write_key(tmp_path, "k")
    sign_with_key(model, private)
    report = _scan(model, SignatureRequest())  # nothing to verify with: not-checked
    assert report.verdict.decision is Decision.DENY
    assert "signed" in [r.rule_id for r in report.verdict.reasons]
    assert Level.SIGNED_BY_TRUSTED_IDENTITY not in established_levels(facts_of(report))
