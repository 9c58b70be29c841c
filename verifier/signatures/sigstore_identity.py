"""Sigstore keyless signatures, verified offline against a trusted root (no network)."""

from __future__ import annotations

import importlib.resources

from verifier.model import SignatureMethod
from verifier.signatures.bundle import ParsedBundle
from verifier.signatures.interface import SignatureInvalidError, SignatureRequest, SignerIdentity
from verifier.signatures.model_signing import certificate_identity, key_usage_names

#: The public-good trusted root that the `sigstore` package ships.
_PUBLIC_GOOD_ROOT = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


def public_good_trusted_root() -> bytes:
    """The Sigstore public-good trusted root shipped inside the `sigstore` package.

    Raises:
        SignatureInvalidError: the installed `sigstore` does not ship it.
    """
    resource = importlib.resources.files("sigstore")
    for part in _PUBLIC_GOOD_ROOT:
        resource = resource / part
    try:
        return resource.read_bytes()
    except OSError:
        raise SignatureInvalidError(
            "the installed sigstore package ships no public-good trusted root; pass --trusted-root"
        ) from None


def verify_identity(bundle: ParsedBundle, request: SignatureRequest) -> SignerIdentity:
    """Verify a keyless bundle: certificate chain to Fulcio at the logged time, SCT, the Rekor
    inclusion proof and checkpoint, the DSSE signature, and the identity and issuer asked for.

    Raises:
        SignatureInvalidError: any of those does not hold.
    """
    # sigstore imports are heavy; only keyless verification needs them.
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import Verifier, policy
    from sigstore_models.trustroot import v1 as trustroot_v1

    assert request.identity is not None and request.issuer is not None
    root_bytes = request.trusted_root or public_good_trusted_root()
    try:
        trusted_root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(root_bytes))
    except (ValueError, SigstoreError) as exc:
        raise SignatureInvalidError(f"the trusted root cannot be read: {exc}") from None
    try:
        parsed = Bundle.from_json(bundle.raw)
    except (ValueError, SigstoreError) as exc:
        raise SignatureInvalidError(f"not a valid Sigstore bundle: {exc}") from None
    try:
        verifier = Verifier(trusted_root=trusted_root)
        verifier.verify_dsse(
            parsed, policy.Identity(identity=request.identity, issuer=request.issuer)
        )
    except (ValueError, SigstoreError) as exc:
        raise SignatureInvalidError(f"Sigstore verification failed: {exc}") from None
    cert = parsed.signing_certificate
    signer, subject = certificate_identity(cert)
    return SignerIdentity(
        method=SignatureMethod.SIGSTORE,
        signer=request.identity,
        issuer=request.issuer,
        certificate_subject=signer if subject == "" else subject,
        key_usage=key_usage_names(cert),
    )
