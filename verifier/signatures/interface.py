"""The signature seam: what the user trusts, what a signature states, and how checks fail."""

from __future__ import annotations

from dataclasses import dataclass, field

from verifier.model import SignatureMethod

#: Where model signing writes the signature, at the model's root.
DEFAULT_SIGNATURE_NAME = "model.sig"
#: A signature is a few KiB; anything much larger is refused before parsing.
MAX_SIGNATURE_BYTES = 16 * 1024 * 1024


class SignatureInvalidError(Exception):
    """The signature is malformed, does not verify, or does not match what is trusted."""


class SignatureUnsupportedError(Exception):
    """The signature uses something verifier cannot check (it is then `not-checked`)."""


@dataclass(frozen=True)
class SignatureRequest:
    """What to verify a signature with, as the user or the policy named it.

    Every trust input is content (PEM or JSON bytes) with the name it came from, so this
    layer does no file I/O.
    """

    signature_path: str | None = None
    public_keys: tuple[tuple[str, bytes], ...] = ()
    certificate_chain: tuple[tuple[str, bytes], ...] = ()
    identity: str | None = None
    issuer: str | None = None
    trusted_root: bytes | None = None

    @property
    def has_trust(self) -> bool:
        """Whether anything was named to verify with."""
        return bool(self.public_keys or self.certificate_chain or self.identity)


@dataclass(frozen=True)
class SignedResource:
    """One signed entry: a file (start/end None) or a shard of it."""

    name: str
    path: str
    algorithm: str
    digest: str
    start: int | None = None
    end: int | None = None


@dataclass(frozen=True)
class SignedManifest:
    """The in-toto statement's content, as signed."""

    predicate_type: str
    method: str
    hash_type: str
    shard_size: int | None
    ignore_paths: tuple[str, ...]
    resources: tuple[SignedResource, ...]


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed, as established by the verification method."""

    method: SignatureMethod
    signer: str
    issuer: str | None = None
    key_fingerprint: str | None = None
    certificate_subject: str | None = None
    key_usage: tuple[str, ...] = field(default_factory=tuple)
