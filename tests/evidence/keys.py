"""Key pairs the evidence tests generate (never checked in)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def write_pair(
    folder: Path, name: str, key: PrivateKey, *, password: bytes | None = None
) -> tuple[Path, Path]:
    """Write `key` as `name.pem` (PKCS#8) and its public key as `name.pub`."""
    folder.mkdir(parents=True, exist_ok=True)
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private = folder / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    public = folder / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def fixed_ed25519() -> ed25519.Ed25519PrivateKey:
    """A fixed Ed25519 key (deterministic signatures, for golden files)."""
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
