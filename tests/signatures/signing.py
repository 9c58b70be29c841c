"""Test helpers: keys, a CA chain (root, intermediate, code-signing leaf) and real model_signing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from model_signing import hashing, signing

from tests.samples import safetensors_bytes

ROOT = Path(__file__).resolve().parents[2]
#: The upstream fixtures live in `../shared` beside the clone (CI); a git worktree one level
#: deeper finds them one level up.
_CANDIDATES = [base / "shared" / "fixtures" / "model-signing" for base in ROOT.parents[:2]]
SHARED = next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])


def write_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh P-256 key pair written as PEM: (private, public)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = folder / f"{name}.key"
    public = folder / f"{name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: dt.datetime,
    not_after: dt.datetime,
    usage: str = "code-signing",
    email: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        signs = usage != "none"
        builder = builder.add_extension(
            x509.KeyUsage(signs, False, not signs, False, False, False, False, False, False),
            critical=True,
        )
        if usage == "code-signing":
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
        if email is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
            )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


@dataclass(frozen=True)
class Chain:
    """A generated PKI: root and intermediate PEMs, and a leaf with its private key."""

    root: Path
    intermediate: Path
    leaf: Path
    leaf_key: Path


def make_chain(
    folder: Path,
    name: str = "ca",
    *,
    leaf_usage: str = "code-signing",
    leaf_expired: bool = False,
    email: str | None = "signer@example.com",
) -> Chain:
    """Root -> intermediate -> leaf, all EC P-256."""
    now = dt.datetime.now(dt.UTC)
    valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=365))
    root_key = ec.generate_private_key(ec.SECP256R1())
    int_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(
        f"{name} root",
        root_key,
        f"{name} root",
        root_key,
        ca=True,
        not_before=valid[0],
        not_after=valid[1],
    )
    inter = _cert(
        f"{name} intermediate",
        int_key,
        f"{name} root",
        root_key,
        ca=True,
        not_before=valid[0],
        not_after=valid[1],
    )
    leaf_validity = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1)) if leaf_expired else valid
    )
    leaf = _cert(
        f"{name} signer",
        leaf_key,
        f"{name} intermediate",
        int_key,
        ca=False,
        not_before=leaf_validity[0],
        not_after=leaf_validity[1],
        usage=leaf_usage,
        email=email,
    )
    key_path = folder / f"{name}-leaf.key"
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Chain(
        root=_pem(folder / f"{name}-root.pem", root),
        intermediate=_pem(folder / f"{name}-int.pem", inter),
        leaf=_pem(folder / f"{name}-leaf.pem", leaf),
        leaf_key=key_path,
    )


def sign_with_key(
    model: Path, private_key: Path, *, hashing_config: hashing.Config | None = None
) -> Path:
    """Sign `model` with the real model_signing key method; the signature lands at model.sig."""
    signature = model / "model.sig"
    config = signing.Config().use_elliptic_key_signer(private_key=private_key)
    if hashing_config is not None:
        config.set_hashing_config(hashing_config)
    config.sign(model, signature)
    return signature


def sign_with_certificate(model: Path, chain: Chain) -> Path:
    """Sign `model` with the real model_signing certificate method."""
    signature = model / "model.sig"
    signing.Config().use_certificate_signer(
        private_key=chain.leaf_key,
        signing_certificate=chain.leaf,
        certificate_chain=[chain.intermediate],
    ).sign(model, signature)
    return signature


def make_model(folder: Path) -> Path:
    """A small model folder with nested files and an empty one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"hidden_size": 8}\n')
    # Weights of a format the scanner identifies (unidentified bytes are FORMAT-UNKNOWN, high).
    tensor = {"w": {"dtype": "U8", "shape": [10240], "data_offsets": [0, 10240]}}
    (folder / "weights.bin").write_bytes(safetensors_bytes(tensor, bytes(range(256)) * 40))
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "notes.txt").write_text("notes\n")
    (folder / "empty.txt").write_bytes(b"")
    return folder
