"""The signature options through click: exit codes, JSON, the table line, and what is recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.signatures.signing import make_chain, make_model, sign_with_certificate, sign_with_key
from tests.signatures.signing import write_key as _write_key
from verifier.cli import cli


def _run(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Path, Path]:
    model = make_model(tmp_path / "model")
    private, public = _write_key(tmp_path, "signer")
    sign_with_key(model, private)
    return model, public


def test_verified_signature_is_recorded_and_shown(
    signed: tuple[Path, Path], database_url: str
) -> None:
    model, public = signed
    code, out, _ = _run(
        "scan",
        str(model),
        "--public-key",
        str(public),
        "--format",
        "json",
        database_url=database_url,
    )
    assert code == 0
    doc: dict[str, Any] = json.loads(out)
    assert doc["signature"]["status"] == "verified"
    assert doc["signature"]["method"] == "key"
    code, shown, _ = _run("show", doc["scan_id"], "--format", "json", database_url=database_url)
    assert code == 0
    assert json.loads(shown)["signature"] == doc["signature"]


def test_table_names_the_signature(signed: tuple[Path, Path], sqlite_url: str) -> None:
    model, public = signed
    code, out, _ = _run("scan", str(model), "--public-key", str(public), database_url=sqlite_url)
    assert code == 0
    assert "signature: verified by sha256:" in out


def test_wrong_key_exits_1(signed: tuple[Path, Path], tmp_path: Path, sqlite_url: str) -> None:
    model, _ = signed
    _, other = _write_key(tmp_path, "other")
    code, out, _ = _run(
        "scan", str(model), "--public-key", str(other), "--format", "json", database_url=sqlite_url
    )
    assert code == 1
    assert json.loads(out)["signature"]["status"] == "invalid"


def test_certificate_chain_option(tmp_path: Path, sqlite_url: str) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    code, out, _ = _run(
        "scan",
        str(model),
        "--certificate-chain",
        str(chain.root),
        "--certificate-chain",
        str(chain.intermediate),
        "--format",
        "json",
        database_url=sqlite_url,
    )
    assert code == 0, out
    sig = json.loads(out)["signature"]
    assert sig["status"] == "verified" and sig["certificate_subject"] == "CN=ca signer"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--identity", "a@example.com"], "--identity and --issuer go together"),
        (["--issuer", "https://issuer.example"], "--identity and --issuer go together"),
        (["--trusted-root", "KEY"], "--trusted-root is for Sigstore identities"),
        (["--public-key", "JUNK"], "not a PEM public key"),
        (["--certificate-chain", "JUNK"], "not PEM certificates"),
        (["--public-key", "RSA"], "not an elliptic-curve key"),
    ],
)
def test_bad_trust_options_are_usage_errors(
    signed: tuple[Path, Path], tmp_path: Path, sqlite_url: str, extra: list[str], message: str
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    model, public = signed
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    rsa_key = tmp_path / "rsa.pub"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    names = {"KEY": str(public), "JUNK": str(junk), "RSA": str(rsa_key)}
    args = [names.get(a, a) for a in extra]
    code, out, err = _run("scan", str(model), *args, database_url=sqlite_url)
    assert code == 2
    assert out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_signature_path_is_a_usage_error(signed: tuple[Path, Path]) -> None:
    model, _ = signed
    code, _, err = _run("scan", str(model), "--signature", str(model / "nope.sig"))
    assert code == 2
    assert "nope.sig" in err
