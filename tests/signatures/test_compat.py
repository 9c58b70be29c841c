"""Older layouts model_signing still verifies: the v0.1 predicate (one subject per file) and
the v0.2 pre-authentication encoding bug. Each crafted signature is first shown to verify with
model_signing's own verifier, so the test pins what the library accepts, not our guess of it."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import verifying
from model_signing._signing import sign_sigstore_pb

from tests.signatures.signing import make_model, write_key
from verifier.model import SignatureStatus
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.signatures.interface import SignatureRequest


def _bundle(private: Path, payload: bytes, *, compat_pae: bool) -> bytes:
    key = serialization.load_pem_private_key(private.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encoded = sign_sigstore_pb.pae_compat(payload) if compat_pae else sign_sigstore_pb.pae(payload)
    signature = key.sign(encoded, ec.ECDSA(hashes.SHA256()))
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return json.dumps(
        {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "publicKey": {"hint": hashlib.sha256(pem).hexdigest()},
                "tlogEntries": [],
            },
            "dsseEnvelope": {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
            },
        }
    ).encode()


def _v01_statement(model: Path) -> bytes:
    subjects = [
        {"name": p.relative_to(model).as_posix(), "digest": {"sha256": _sha256(p)}}
        for p in sorted(model.rglob("*"))
        if p.is_file() and p.name != "model.sig"
    ]
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subjects,
            "predicateType": "https://model_signing/Digests/v0.1",
            "predicate": {},
        }
    ).encode()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("compat_pae", [False, True], ids=["pae", "v0.2-pae"])
def test_v01_layout_is_verified_like_model_signing_does(tmp_path: Path, compat_pae: bool) -> None:
    model = make_model(tmp_path / "model")
    private, public = write_key(tmp_path, "old")
    signature = tmp_path / "model.sig"  # beside the model: the library does not ignore it inside
    signature.write_bytes(_bundle(private, _v01_statement(model), compat_pae=compat_pae))
    verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model, signature)
    request = SignatureRequest(
        signature_path=str(signature), public_keys=((str(public), public.read_bytes()),)
    )
    report = scan_target(
        str(model), policy=load_policy(default_policy_path()), recorder=None, signature=request
    )
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.predicate_type == "https://model_signing/Digests/v0.1"

    (model / "weights.bin").write_bytes(b"changed")
    report = scan_target(
        str(model), policy=load_policy(default_policy_path()), recorder=None, signature=request
    )
    assert report.signature is not None
    assert report.signature.diff.changed == ("weights.bin",)


def test_verifier_does_not_need_pyopenssl() -> None:
    # model_signing imports pyOpenSSL without declaring it; verifier itself must not need it.
    code = (
        "import sys; sys.modules['OpenSSL'] = None\n"
        "import verifier.cli, verifier.signatures.check, verifier.signatures.sigstore_identity\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
