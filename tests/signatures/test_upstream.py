"""Real upstream signatures (sigstore/model-transparency test data), verified offline.

The fixtures are read where they are, in `../shared/fixtures/model-signing/` beside the clone;
they are never copied into the repository. Sigstore verification uses the public-good trusted
root shipped inside the `sigstore` package, so no network is needed.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.signatures.signing import SHARED
from verifier.model import ScanReport, SignatureMethod, SignatureStatus
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.signatures.interface import SignatureRequest

pytestmark = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"upstream model-signing fixtures not found at {SHARED} (../shared beside the clone)",
)

IDENTITY = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a connection fails the test: verification must be offline."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield


def _scan(model: Path, request: SignatureRequest) -> ScanReport:
    return scan_target(
        str(model), policy=load_policy(default_policy_path()), recorder=None, signature=request
    )


def _pem(*names: str) -> tuple[tuple[str, bytes], ...]:
    return tuple((name, (SHARED / "keys" / name).read_bytes()) for name in names)


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(SHARED / name, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def test_upstream_key_signature() -> None:
    report = _scan(
        SHARED / "v1.1.0-elliptic-key",
        SignatureRequest(public_keys=_pem("signing-key-pub.pem")),
    )
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.method is SignatureMethod.KEY
    assert set(sig.outside) == {"ignore-me", "model.sig"}


def test_upstream_certificate_signature() -> None:
    report = _scan(
        SHARED / "v1.1.0-certificate",
        SignatureRequest(certificate_chain=_pem("ca-cert.pem", "int-ca-cert.pem")),
    )
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.method is SignatureMethod.CERTIFICATE
    assert sig.certificate_subject == "CN=intermediate-ca"
    assert "code-signing" in sig.key_usage


def test_upstream_certificate_with_its_intermediate_only_is_invalid() -> None:
    # model_signing 1.1.1 trusts every certificate passed; verifier trusts only roots.
    report = _scan(
        SHARED / "v1.1.0-certificate",
        SignatureRequest(certificate_chain=_pem("int-ca-cert.pem")),
    )
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID


def test_upstream_sigstore_signature_offline() -> None:
    report = _scan(SHARED / "v1.1.0-sigstore", SignatureRequest(identity=IDENTITY, issuer=ISSUER))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.method is SignatureMethod.SIGSTORE
    assert sig.signer == IDENTITY and sig.issuer == ISSUER
    assert report.verdict.decision.value == "allow"


@pytest.mark.parametrize(
    ("identity", "issuer"),
    [("someone@example.com", ISSUER), (IDENTITY, "https://accounts.google.com")],
    ids=["wrong-identity", "wrong-issuer"],
)
def test_upstream_sigstore_wrong_identity_or_issuer_is_invalid(identity: str, issuer: str) -> None:
    report = _scan(SHARED / "v1.1.0-sigstore", SignatureRequest(identity=identity, issuer=issuer))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert "Sigstore verification failed" in sig.reason
    assert report.verdict.decision.value == "deny"


def test_upstream_sigstore_modified_file_is_invalid(tmp_path: Path) -> None:
    model = _copy("v1.1.0-sigstore", tmp_path)
    (model / "signme-1").write_bytes(b"tampered")
    report = _scan(model, SignatureRequest(identity=IDENTITY, issuer=ISSUER))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.changed == ("signme-1",)


def test_upstream_sigstore_with_a_trusted_root_that_does_not_hold_it(tmp_path: Path) -> None:
    import importlib.resources

    staging = (
        importlib.resources.files("sigstore")
        / "_store"
        / "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev"
        / "trusted_root.json"
    ).read_bytes()
    report = _scan(
        SHARED / "v1.1.0-sigstore",
        SignatureRequest(identity=IDENTITY, issuer=ISSUER, trusted_root=staging),
    )
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID


def test_upstream_sigstore_with_a_tampered_inclusion_proof(tmp_path: Path) -> None:
    import json

    model = _copy("v1.1.0-sigstore", tmp_path)
    bundle = json.loads((model / "model.sig").read_text())
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = proof["hashes"][1]
    (model / "model.sig").write_text(json.dumps(bundle))
    report = _scan(model, SignatureRequest(identity=IDENTITY, issuer=ISSUER))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID
