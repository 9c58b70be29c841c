"""The organisation's countersignature: an OpenSSF model signing bundle over verified digests.

Written only for a model whose recorded scan completed with decision allow, from the digests
that scan computed (nothing is read again). The format is the one `model_signing` 1.x writes with
its elliptic-key signer, so `model_signing verify key` accepts it:

- a Sigstore bundle v0.3 (`verificationMaterial.publicKey.hint` = hex SHA-256 of the PEM public
  key, no transparency log entries) holding a DSSE envelope;
- whose payload is an in-toto Statement v1 with predicate type
  `https://model_signing/signature/v1.0`: one `resources` entry per file (`name`, `sha256`,
  `digest`), `serialization` `{method: files, hash_type: sha256, allow_symlinks: false,
  ignore_paths}`, and one subject whose digest is the SHA-256 of the resources' raw digests in
  order;
- signed with ECDSA over the DSSE pre-authentication encoding (SHA-256 for P-256, SHA-384 for
  P-384, SHA-512 for P-521), the signature DER-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from verifier.errors import KeyFileError, NotApprovableError
from verifier.evidence.dsse import INTOTO_PAYLOAD_TYPE, PrivateKey, pae
from verifier.evidence.facts import EvidenceFacts
from verifier.model import Approval

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: Paths `model_signing` leaves out of a signature by default (relative to the model's root).
DEFAULT_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


def _ignored(path: str, ignored: tuple[str, ...]) -> bool:
    return any(path == name or path.startswith(name + "/") for name in ignored)


def check_approvable(facts: EvidenceFacts) -> None:
    """Refuse a model the organisation must not countersign.

    Raises:
        NotApprovableError: The recorded decision is not allow, the scan did not complete, or
            a file has no verified digest.
    """
    report = facts.report
    if not facts.passed:
        raise NotApprovableError(
            f"scan {report.scan_id} of {facts.name} has decision {report.verdict.decision.value} "
            f"(status {report.status.value}); only an allowed, complete scan can be approved"
        )
    if not report.files or any(f.sha256 is None or not f.complete for f in report.files):
        raise NotApprovableError(
            f"scan {report.scan_id} has files without a verified digest; nothing approved"
        )


def approval_statement(facts: EvidenceFacts, *, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """The in-toto statement listing every verified file digest, as `model_signing` signs it."""
    ignored = (*DEFAULT_IGNORED, *ignore)
    files = sorted(
        (f for f in facts.report.files if not _ignored(f.path, ignored)), key=lambda f: f.path
    )
    resources = [{"name": f.path, "algorithm": "sha256", "digest": f.sha256} for f in files]
    root = hashlib.sha256(b"".join(bytes.fromhex(f.sha256 or "") for f in files)).hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.name.rsplit("/", 1)[-1], "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(ignored),
            },
            "resources": resources,
        },
    }


def _ec_key(key: PrivateKey) -> ec.EllipticCurvePrivateKey:
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name not in _HASHES:
        raise KeyFileError(
            "the OpenSSF model signing key method needs an EC P-256, P-384 or P-521 key"
        )
    return key


def approval_bundle(
    facts: EvidenceFacts, key: PrivateKey, *, ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The signed bundle approving the model, after `check_approvable`.

    Args:
        facts: The recorded scan of the model.
        key: The organisation's EC private key.
        ignore: More paths (relative to the model's root) the signature leaves out, such as
            the bundle's own path when it is written inside the model folder.

    Raises:
        NotApprovableError: The model may not be approved (see `check_approvable`).
        KeyFileError: The key is not an EC key `model_signing` can verify.
    """
    check_approvable(facts)
    ec_key = _ec_key(key)
    payload = json.dumps(approval_statement(facts, ignore=ignore), sort_keys=True).encode()
    signature = ec_key.sign(pae(INTOTO_PAYLOAD_TYPE, payload), ec.ECDSA(_HASHES[ec_key.curve.name]))
    public_pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": hashlib.sha256(public_pem).hexdigest()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": INTOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }


def bundle_resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The signed resources of a bundle this module wrote."""
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    resources: list[dict[str, Any]] = payload["predicate"]["resources"]
    return resources


def approval_record(bundle: dict[str, Any], data: bytes, *, output: str, at: datetime) -> Approval:
    """What the audit trail keeps of a bundle this module wrote, serialised as `data`."""
    return Approval(
        approved_at=at.isoformat(),
        key_fingerprint=str(bundle["verificationMaterial"]["publicKey"]["hint"]),
        bundle_sha256=hashlib.sha256(data).hexdigest(),
        output=output,
        files=len(bundle_resources(bundle)),
    )
