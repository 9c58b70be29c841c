"""Verify an OpenSSF model signature's envelope: by key, by certificate chain, or by Sigstore.

Only what the user or the policy names is trusted. Unlike `model_signing` 1.1.1, a
certificate chain must end at a self-signed root the user gave (intermediates never act as
anchors, and there is no fallback to web roots), every certificate must be valid at the time
of verification, and the signing certificate must allow code signing or digital signatures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from verifier.model import SignatureMethod
from verifier.signatures.bundle import ParsedBundle, pae, pae_v02
from verifier.signatures.interface import (
    SignatureInvalidError,
    SignatureRequest,
    SignatureUnsupportedError,
    SignerIdentity,
)

_CURVES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
#: Longest chain accepted from leaf to root.
MAX_CHAIN_DEPTH = 8


def bundle_method(bundle: ParsedBundle) -> SignatureMethod:
    """The method the bundle was signed with, from its verification material."""
    if bundle.sigstore_certificate is not None or bundle.has_tlog_entries:
        return SignatureMethod.SIGSTORE
    if bundle.certificates:
        return SignatureMethod.CERTIFICATE
    return SignatureMethod.KEY


def key_fingerprint(key: ec.EllipticCurvePublicKey) -> str:
    """`sha256:<hex>` of the key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def _key_hint(key: ec.EllipticCurvePublicKey) -> str:
    # model_signing's hint: SHA-256 of the PEM encoding.
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def load_public_key(name: str, pem: bytes) -> ec.EllipticCurvePublicKey:
    """Load an elliptic-curve public key as model signing uses.

    Raises:
        ValueError: not a PEM public key on a supported curve.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise ValueError(f"{name}: not an elliptic-curve key on P-256, P-384 or P-521")
    return key


def _ecdsa_verifies(
    key: ec.EllipticCurvePublicKey,
    bundle: ParsedBundle,
    *,
    v02_hash: Callable[[], hashes.HashAlgorithm],
) -> bool:
    algorithm = _CURVES[key.curve.name]
    try:
        key.verify(
            bundle.signature, pae(bundle.payload_type, bundle.payload), ec.ECDSA(algorithm())
        )
        return True
    except InvalidSignature:
        pass
    try:
        key.verify(
            bundle.signature, pae_v02(bundle.payload_type, bundle.payload), ec.ECDSA(v02_hash())
        )
        return True
    except InvalidSignature:
        return False


def verify_with_keys(bundle: ParsedBundle, request: SignatureRequest) -> SignerIdentity:
    """Verify a key-method bundle with any of the given public keys.

    Raises:
        SignatureInvalidError: no given key made this signature.
    """
    keys = [load_public_key(name, pem) for name, pem in request.public_keys]
    candidates = keys
    if bundle.key_hint is not None:
        candidates = [k for k in keys if _key_hint(k) == bundle.key_hint]
        if not candidates:
            raise SignatureInvalidError(
                f"signed by another key (key hint {bundle.key_hint[:16]}... matches no given key)"
            )
    for key in candidates:
        if _ecdsa_verifies(key, bundle, v02_hash=_CURVES[key.curve.name]):
            fingerprint = key_fingerprint(key)
            return SignerIdentity(
                method=SignatureMethod.KEY, signer=fingerprint, key_fingerprint=fingerprint
            )
    raise SignatureInvalidError("the signature does not verify with any given public key")


def _load_certificates(name: str, pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise ValueError(f"{name}: not PEM certificates ({exc})") from None


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def key_usage_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The signing-relevant usages a certificate allows, by name."""
    names: list[str] = []
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if usage.digital_signature:
            names.append("digital-signature")
    except x509.ExtensionNotFound:
        pass
    try:
        extended = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if ExtendedKeyUsageOID.CODE_SIGNING in extended:
            names.append("code-signing")
    except x509.ExtensionNotFound:
        pass
    return tuple(names)


def certificate_identity(cert: x509.Certificate) -> tuple[str, str]:
    """(signer, subject): the first e-mail or URI SAN if any, else the subject; and the subject."""
    subject = cert.subject.rfc4514_string()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            values = san.get_values_for_type(kind)
            if values:
                return str(values[0]), subject
    except x509.ExtensionNotFound:
        pass
    return subject, subject


def verify_with_chain(
    bundle: ParsedBundle, request: SignatureRequest, *, at: datetime | None = None
) -> SignerIdentity:
    """Verify a certificate-method bundle against the roots in the given chain.

    Raises:
        SignatureInvalidError: the chain, validity, usage or signature does not hold.
    """
    given = [c for name, pem in request.certificate_chain for c in _load_certificates(name, pem)]
    anchors = [c for c in given if _self_signed(c)]
    if not anchors:
        raise SignatureInvalidError(
            "the certificate chain given holds no self-signed root to trust"
        )
    try:
        leaf = x509.load_der_x509_certificate(bundle.certificates[0])
        bundled = [x509.load_der_x509_certificate(c) for c in bundle.certificates[1:]]
    except ValueError as exc:
        raise SignatureInvalidError(f"a certificate in the bundle is malformed: {exc}") from None
    intermediates = [c for c in given if c not in anchors] + bundled
    when = at or datetime.now(UTC)
    verifier = (
        PolicyBuilder()
        .store(Store(anchors))
        .time(when)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all()
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise SignatureInvalidError(
            f"the signing certificate ({leaf.subject.rfc4514_string()}) does not chain to a "
            f"given root at {when:%Y-%m-%dT%H:%M:%SZ}: {exc}"
        ) from None
    usages = key_usage_names(leaf)
    if not usages:
        raise SignatureInvalidError(
            "the signing certificate allows neither digital signatures nor code signing"
        )
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise SignatureUnsupportedError("the signing certificate's key is not a supported EC key")
    if not _ecdsa_verifies(key, bundle, v02_hash=hashes.SHA256):
        raise SignatureInvalidError("the signature does not verify with the signing certificate")
    signer, subject = certificate_identity(leaf)
    return SignerIdentity(
        method=SignatureMethod.CERTIFICATE,
        signer=signer,
        issuer=leaf.issuer.rfc4514_string(),
        key_fingerprint=key_fingerprint(key),
        certificate_subject=subject,
        key_usage=usages,
    )


def check_trust_material(request: SignatureRequest) -> None:
    """Check that every key and certificate given can be loaded, before any scan starts.

    Raises:
        ValueError: a key or certificate file is not what its option expects.
    """
    for name, pem in request.public_keys:
        load_public_key(name, pem)
    for name, pem in request.certificate_chain:
        if not _load_certificates(name, pem):
            raise ValueError(f"{name}: holds no certificate")
