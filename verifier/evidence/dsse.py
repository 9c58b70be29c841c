"""DSSE envelopes (Dead Simple Signing Envelope v1) signed with EC or Ed25519 keys.

The signature covers the pre-authentication encoding
`DSSEv1 <len(type)> <type> <len(payload)> <payload>`; ECDSA signatures are DER-encoded over
SHA-256 (P-256) or SHA-384 (P-384), Ed25519 signatures are raw. `keyid` is the hex SHA-256 of
the public key's DER SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from verifier import bounded_json
from verifier.errors import AttestationError, KeyFileError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
#: Largest envelope file read, in bytes.
MAX_ENVELOPE = 64 * 1024 * 1024

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_CURVES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of `payload` of type `payload_type`."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _curve_hash(
    key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey,
) -> hashes.HashAlgorithm:
    algorithm = _CURVES.get(key.curve.name)
    if algorithm is None:
        raise KeyFileError(
            f"elliptic curve {key.curve.name} is not supported; use P-256, P-384 or P-521"
        )
    return algorithm


def load_private_key(path: Path) -> PrivateKey:
    """An unencrypted PEM private key: EC P-256, P-384, P-521 or Ed25519.

    Raises:
        KeyFileError: The file is missing, unreadable, not a PEM private key, encrypted, or of
            another kind (such as RSA).
    """
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"signing key {path} is encrypted; give an unencrypted key") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not a PEM private key"
        raise KeyFileError(
            f"signing key {path} is not a usable PEM private key: {reason}"
        ) from None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _curve_hash(key)
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise KeyFileError(
        f"signing key {path} is a {type(key).__name__}; use an EC P-256/P-384/P-521 or Ed25519 key"
    )


def load_public_key(path: Path) -> PublicKey:
    """A PEM public key: EC P-256, P-384, P-521 or Ed25519.

    Raises:
        KeyFileError: The file is missing, unreadable, not a PEM public key, or of another kind.
    """
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "not a PEM public key"
        raise KeyFileError(f"public key {path} is not a usable PEM public key: {reason}") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        _curve_hash(key)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise KeyFileError(
        f"public key {path} is a {type(key).__name__}; use an EC P-256/P-384/P-521 or Ed25519 key"
    )


def public_key_der(key: PublicKey) -> bytes:
    """The DER SubjectPublicKeyInfo of `key`."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> str:
    """Hex SHA-256 of the public key's DER SubjectPublicKeyInfo."""
    return hashlib.sha256(public_key_der(key)).hexdigest()


def sign(key: PrivateKey, message: bytes) -> bytes:
    """A signature over `message`: DER ECDSA with the curve's hash, or raw Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, ec.ECDSA(_curve_hash(key)))


def _verify(key: PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, ec.ECDSA(_curve_hash(key)))
    except InvalidSignature:
        return False
    return True


def sign_envelope(
    payload: bytes, key: PrivateKey, *, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> dict[str, Any]:
    """A DSSE envelope of `payload` with one signature by `key`."""
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {
                "keyid": key_id(key.public_key()),
                "sig": base64.b64encode(sign(key, pae(payload_type, payload))).decode(),
            }
        ],
    }


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise AttestationError(f"envelope {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too
            return base64.urlsafe_b64decode(value)
        except (binascii.Error, ValueError):
            raise AttestationError(f"envelope {what} is not valid base64") from None


def verify_envelope(
    data: bytes, key: PublicKey, *, payload_type: str = INTOTO_PAYLOAD_TYPE
) -> bytes:
    """The payload of DSSE envelope `data` when a signature by `key` verifies over it.

    Raises:
        AttestationError: Not a DSSE envelope, another payload type, or no valid signature by
            `key`.
    """
    if len(data) > MAX_ENVELOPE:
        raise AttestationError(f"envelope is larger than {MAX_ENVELOPE} bytes")
    try:
        envelope = bounded_json.loads(data, bounded_json.TRUST_INPUT)
    except (ValueError, RecursionError):
        raise AttestationError("not a DSSE envelope: the file is not JSON") from None
    if not isinstance(envelope, dict) or not {"payloadType", "payload", "signatures"} <= set(
        envelope
    ):
        raise AttestationError("not a DSSE envelope: payloadType, payload or signatures missing")
    if envelope["payloadType"] != payload_type:
        raise AttestationError(
            f"envelope payload type is {envelope['payloadType']!r}, expected {payload_type!r}"
        )
    payload = _b64(envelope["payload"], "payload")
    signatures = envelope["signatures"]
    if not isinstance(signatures, list) or not signatures:
        raise AttestationError("envelope has no signatures")
    message = pae(payload_type, payload)
    for entry in signatures:
        if isinstance(entry, dict) and _verify(key, _b64(entry.get("sig"), "signature"), message):
            return payload
    raise AttestationError(
        f"no signature in the envelope verifies with the given public key "
        f"(keyid {key_id(key)[:16]}...)"
    )
