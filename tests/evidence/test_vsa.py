"""SLSA verification summaries: statement, DSSE signing, verification and rejection."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.evidence.golden_files import check_golden
from tests.evidence.keys import fixed_ed25519, p256, write_pair
from tests.evidence.recorded import COMMIT, SCAN_ID, allowed_report, denied_report
from verifier.cli import cli
from verifier.errors import AttestationError
from verifier.evidence import EvidenceFormat, dsse, facts_of, render_evidence, vsa
from verifier.store import Store


def _run(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_statement_fields() -> None:
    document = vsa.statement(facts_of(allowed_report()))
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/verification_summary/v1"
    predicate = document["predicate"]
    assert predicate["verifier"] == {
        "id": vsa.DEFAULT_VERIFIER_ID,
        "version": {"verifier": "0.1.0"},
    }
    assert predicate["resourceUri"] == f"pkg:huggingface/Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}"
    assert predicate["timeVerified"] == "2026-01-02T03:04:09+00:00"
    assert predicate["policy"]["name"] == "default"
    assert len(predicate["policy"]["digest"]["sha256"]) == 64
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["verifiedLevels"] == [
        "VERIFIER_FORMAT_SAFE",
        "VERIFIER_DIGESTS_VERIFIED",
        "VERIFIER_SIGNED_BY_TRUSTED_IDENTITY",
        "VERIFIER_PUBLISHER_IDENTIFIED",
    ]
    bundle = next(f for f in allowed_report().files if f.path == "model.sig")
    assert predicate["inputAttestations"] == [
        {"name": "model.sig", "digest": {"sha256": bundle.sha256}}
    ]
    assert not any(level.startswith("SLSA_") for level in predicate["verifiedLevels"])
    assert {s["name"]: s["digest"]["sha256"] for s in document["subject"]} == {
        f.path: f.sha256 for f in allowed_report().files
    }
    denied = vsa.statement(facts_of(denied_report()))["predicate"]
    assert denied["verificationResult"] == "FAILED" and denied["verifiedLevels"] == []


def test_golden_unsigned_and_signed() -> None:
    facts = facts_of(allowed_report())
    check_golden("allowed.vsa.json", render_evidence(facts, EvidenceFormat.VSA))
    signed = render_evidence(facts, EvidenceFormat.VSA, signing_key=fixed_ed25519())
    check_golden("allowed.vsa.dsse.json", signed)


@pytest.mark.parametrize(
    "make_key",
    [
        p256,
        fixed_ed25519,
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP521R1()),
    ],
)
def test_signed_vsa_verifies_and_one_changed_byte_is_rejected(make_key: object) -> None:
    key = make_key()  # type: ignore[operator]
    envelope = render_evidence(facts_of(allowed_report()), EvidenceFormat.VSA, signing_key=key)
    verified = vsa.verify(envelope, key.public_key())
    assert verified.result == "PASSED"
    assert verified.statement == vsa.statement(facts_of(allowed_report()))
    document = json.loads(envelope)
    payload = base64.b64decode(document["payload"])
    for position in (10, len(payload) // 2, len(payload) - 3):
        tampered = bytearray(payload)
        tampered[position] ^= 0x01
        document["payload"] = base64.b64encode(bytes(tampered)).decode()
        with pytest.raises(AttestationError, match="no signature"):
            vsa.verify(json.dumps(document).encode(), key.public_key())
    with pytest.raises(AttestationError, match="no signature"):
        vsa.verify(envelope, p256().public_key())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a DSSE envelope"),
        (b'{"payloadType": "x", "payload": "", "signatures": []}', "payload type"),
        (
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}',
            "no signatures",
        ),
        (
            b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%", "signatures": [{}]}',
            "base64",
        ),
    ],
)
def test_malformed_envelopes_are_rejected(data: bytes, reason: str) -> None:
    with pytest.raises(AttestationError, match=reason):
        vsa.verify(data, p256().public_key())


def test_a_signed_payload_that_is_not_a_statement_is_rejected() -> None:
    key = p256()
    envelope = json.dumps(dsse.sign_envelope(b'{"_type": "other"}', key)).encode()
    with pytest.raises(AttestationError, match="not an in-toto Statement"):
        vsa.verify(envelope, key.public_key())


@pytest.fixture
def recorded(sqlite_url: str) -> str:
    with Store.open(sqlite_url) as store:
        store.record_scan(allowed_report())
        store.record_scan(denied_report())
    return sqlite_url


def test_cli_sign_then_verify(recorded: str, tmp_path: Path) -> None:
    private, public = write_pair(tmp_path / "keys", "org", p256())
    out = tmp_path / "vsa.json"
    code, _, _ = _run(
        "report",
        SCAN_ID,
        "--format",
        "vsa",
        "--signing-key",
        str(private),
        "-o",
        str(out),
        "--verifier-id",
        "https://example.org/model-gate",
        database_url=recorded,
    )
    assert code == 0
    code, stdout, _ = _run("verify-attestation", str(out), "--public-key", str(public))
    assert code == 0 and stdout.startswith("verified VSA for pkg:huggingface/Qwen/")
    assert "PASSED" in stdout
    payload = json.loads(base64.b64decode(json.loads(out.read_text())["payload"]))
    assert payload["predicate"]["verifier"]["id"] == "https://example.org/model-gate"
    code, _, _ = _run(
        "verify-attestation", str(out), "--public-key", str(public), "--require-passed"
    )
    assert code == 0
    text = out.read_text()
    middle = text.index('"payload": "') + 40
    flipped = text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]
    (tmp_path / "tampered.json").write_text(flipped)
    code, stdout, err = _run(
        "verify-attestation", str(tmp_path / "tampered.json"), "--public-key", str(public)
    )
    assert code == 1 and stdout == "" and len(err.strip().splitlines()) == 1


def test_cli_require_passed_rejects_a_failed_summary(recorded: str, tmp_path: Path) -> None:
    private, public = write_pair(tmp_path / "keys", "org", fixed_ed25519())
    out = tmp_path / "denied.vsa.json"
    code, _, _ = _run(
        "report",
        denied_report().scan_id,
        "--format",
        "vsa",
        "--signing-key",
        str(private),
        "-o",
        str(out),
        database_url=recorded,
    )
    assert code == 0
    code, _, _ = _run("verify-attestation", str(out), "--public-key", str(public))
    assert code == 0
    code, _, err = _run(
        "verify-attestation", str(out), "--public-key", str(public), "--require-passed"
    )
    assert code == 1 and "FAILED" in err


def test_cli_bad_keys_are_one_line_exit_2_and_write_nothing(recorded: str, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    rsa_key, rsa_pub = write_pair(keys, "rsa", rsa.generate_private_key(65537, 2048))
    locked, _ = write_pair(keys, "locked", p256(), password=b"secret")
    garbage = keys / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    out = tmp_path / "out" / "vsa.json"
    out.parent.mkdir()
    for key, words in [
        (keys / "missing.pem", "not found"),
        (rsa_key, "RSA"),
        (locked, "encrypted"),
        (garbage, "not a usable PEM private key"),
    ]:
        code, stdout, err = _run(
            "report",
            SCAN_ID,
            "--format",
            "vsa",
            "--signing-key",
            str(key),
            "-o",
            str(out),
            database_url=recorded,
        )
        assert code == 2, err
        assert stdout == "" and len(err.strip().splitlines()) == 1 and words in err
    assert list(out.parent.iterdir()) == []
    code, _, err = _run(
        "report",
        SCAN_ID,
        "--format",
        "markdown",
        "--signing-key",
        str(write_pair(keys, "good", p256())[0]),
        database_url=recorded,
    )
    assert code == 2 and "signs the vsa format only" in err
    envelope = tmp_path / "e.json"
    envelope.write_text("{}")
    code, _, err = _run("verify-attestation", str(envelope), "--public-key", str(rsa_pub))
    assert code == 2 and "RSA" in err
    code, _, err = _run("verify-attestation", str(envelope), "--public-key", str(keys / "no.pub"))
    assert code == 2 and "not found" in err
