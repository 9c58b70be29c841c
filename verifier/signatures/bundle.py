"""Read a Sigstore bundle holding a DSSE envelope, strictly, without trusting anything yet."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from verifier import bounded_json
from verifier.signatures.interface import MAX_SIGNATURE_BYTES, SignatureInvalidError

#: Bundle media types model signing writes (key, certificate and Sigstore methods).
BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    }
)
#: The only DSSE payload type a model signature carries.
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


@dataclass(frozen=True)
class ParsedBundle:
    """A bundle's parts, decoded but not verified."""

    raw: bytes
    media_type: str
    payload_type: str
    payload: bytes
    signature: bytes
    key_hint: str | None
    certificates: tuple[bytes, ...]  # DER, leaf first (x509CertificateChain)
    sigstore_certificate: bytes | None  # DER (Sigstore keyless: `certificate`)
    has_tlog_entries: bool


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise SignatureInvalidError(f"bundle field {what} is missing or not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalidError(f"bundle field {what} is not valid base64") from None


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignatureInvalidError(f"bundle field {what} is missing or not an object")
    return value


def parse_bundle(raw: bytes) -> ParsedBundle:
    """Decode a model signature bundle.

    Raises:
        SignatureInvalidError: truncated, not JSON, wrong media or payload type, or malformed.
    """
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise SignatureInvalidError(f"signature is {len(raw)} bytes, over the limit")
    try:
        document = bounded_json.loads(raw, bounded_json.TRUST_INPUT)
    except bounded_json.JsonLimitError as exc:
        raise SignatureInvalidError(f"signature refused before parsing: {exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignatureInvalidError(
            f"signature is not JSON (truncated or corrupted): {exc}"
        ) from None
    bundle = _object(document, "(root)")
    media_type = bundle.get("mediaType")
    if media_type not in BUNDLE_MEDIA_TYPES:
        raise SignatureInvalidError(f"not a Sigstore v0.3 bundle: media type {media_type!r}")
    envelope = _object(bundle.get("dsseEnvelope"), "dsseEnvelope")
    payload_type = envelope.get("payloadType")
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise SignatureInvalidError(f"DSSE payload type is {payload_type!r}, not in-toto JSON")
    payload = _b64(envelope.get("payload"), "dsseEnvelope.payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise SignatureInvalidError("the DSSE envelope must hold exactly one signature")
    signature = _b64(_object(signatures[0], "signatures[0]").get("sig"), "signatures[0].sig")
    material = _object(bundle.get("verificationMaterial"), "verificationMaterial")
    key_hint = None
    if "publicKey" in material:
        hint = _object(material["publicKey"], "publicKey").get("hint")
        if hint is not None and not isinstance(hint, str):
            raise SignatureInvalidError("publicKey.hint is not a string")
        key_hint = hint or None
    certificates: tuple[bytes, ...] = ()
    if "x509CertificateChain" in material:
        chain = _object(material["x509CertificateChain"], "x509CertificateChain")
        entries = chain.get("certificates")
        if not isinstance(entries, list) or not entries:
            raise SignatureInvalidError("x509CertificateChain holds no certificate")
        certificates = tuple(
            _b64(_object(c, "certificate").get("rawBytes"), "certificate.rawBytes") for c in entries
        )
    sigstore_certificate = None
    if "certificate" in material:
        cert = _object(material["certificate"], "certificate")
        sigstore_certificate = _b64(cert.get("rawBytes"), "certificate.rawBytes")
    tlog = material.get("tlogEntries", [])
    if not isinstance(tlog, list):
        raise SignatureInvalidError("tlogEntries is not a list")
    return ParsedBundle(
        raw=raw,
        media_type=media_type,
        payload_type=payload_type,
        payload=payload,
        signature=signature,
        key_hint=key_hint,
        certificates=certificates,
        sigstore_certificate=sigstore_certificate,
        has_tlog_entries=bool(tlog),
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def pae_v02(payload_type: str, payload: bytes) -> bytes:
    """The encoding model signing 0.2 signed by mistake (bytes formatted into text)."""
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()
