"""Model signatures made by the real model_signing library, verified in the one read pass."""

from __future__ import annotations

import base64
import json
import pickle
import shutil
from pathlib import Path

import pytest
from model_signing import hashing

from tests.signatures.signing import (
    Chain,
    make_chain,
    make_model,
    sign_with_certificate,
    sign_with_key,
    write_key,
)
from verifier.model import ScanReport, SignatureMethod, SignatureStatus
from verifier.pipeline import scan_target
from verifier.policy import default_policy_path, load_policy
from verifier.signatures.interface import SignatureRequest


def _scan(model: Path, **trust: object) -> ScanReport:
    request = SignatureRequest(**trust)  # type: ignore[arg-type]
    return scan_target(
        str(model), policy=load_policy(default_policy_path()), recorder=None, signature=request
    )


def _keys(*paths: Path) -> tuple[tuple[str, bytes], ...]:
    return tuple((str(p), p.read_bytes()) for p in paths)


def _codes(report: ScanReport) -> set[str]:
    return {f.code for f in report.findings}


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return write_key(tmp_path, "signer")


@pytest.fixture
def signed(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    model = make_model(tmp_path / "model")
    sign_with_key(model, keys[0])
    return model


def test_valid_key_signature_is_verified(signed: Path, keys: tuple[Path, Path]) -> None:
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None
    assert sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.method is SignatureMethod.KEY
    assert sig.signer is not None and sig.signer.startswith("sha256:")
    assert sig.key_fingerprint == sig.signer
    assert sig.diff.empty
    # model_signing's Python API does not list model.sig as ignored: it is outside all the same.
    assert sig.outside == ("model.sig",)
    assert "SIGNATURE-VERIFIED" in _codes(report)
    assert report.verdict.decision.value == "allow"


def test_any_of_several_keys_may_match(
    tmp_path: Path, signed: Path, keys: tuple[Path, Path]
) -> None:
    _, other = write_key(tmp_path, "other")
    report = _scan(signed, public_keys=_keys(other, keys[1]))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.VERIFIED


def test_wrong_key_is_invalid(tmp_path: Path, signed: Path) -> None:
    _, other = write_key(tmp_path, "other")
    report = _scan(signed, public_keys=_keys(other))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID
    assert "another key" in report.signature.reason
    assert "SIGNATURE-INVALID" in _codes(report)
    assert report.verdict.decision.value == "deny"


def test_wrong_key_without_hint_is_invalid(tmp_path: Path, signed: Path) -> None:
    bundle = json.loads((signed / "model.sig").read_text())
    del bundle["verificationMaterial"]["publicKey"]["hint"]
    (signed / "model.sig").write_text(json.dumps(bundle))
    _, other = write_key(tmp_path, "other")
    report = _scan(signed, public_keys=_keys(other))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID
    assert "does not verify" in report.signature.reason


def test_modified_file_is_listed_as_changed(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "weights.bin").write_bytes(b"\xff" + (signed / "weights.bin").read_bytes()[1:])
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.changed == ("weights.bin",) and not sig.diff.extra and not sig.diff.missing
    assert sig.signer is not None  # the envelope verified: who signed is still known
    by_file = {f.file for f in report.findings if f.code == "SIGNATURE-INVALID"}
    assert "weights.bin" in by_file


def test_added_file_is_listed_as_extra(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "sub" / "added.py").write_text("print('hi')\n")
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.extra == ("sub/added.py",) and not sig.diff.changed and not sig.diff.missing


def test_removed_file_is_listed_as_missing(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "sub" / "notes.txt").unlink()
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.missing == ("sub/notes.txt",) and not sig.diff.changed and not sig.diff.extra


def test_bundle_of_another_model_is_invalid(
    tmp_path: Path, signed: Path, keys: tuple[Path, Path]
) -> None:
    other = make_model(tmp_path / "other")
    (other / "weights.bin").write_bytes(b"different weights")
    sign_with_key(other, keys[0])
    shutil.copy(other / "model.sig", signed / "model.sig")
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.changed == ("weights.bin",)


def _corrupt_payload(text: str) -> str:
    bundle = json.loads(text)
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(bundle)


def _media(text: str) -> str:
    bundle = json.loads(text)
    bundle["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.1+json"
    return json.dumps(bundle)


def _payload_type(text: str) -> str:
    bundle = json.loads(text)
    bundle["dsseEnvelope"]["payloadType"] = "text/plain"
    return json.dumps(bundle)


def _bad_signature(text: str) -> str:
    bundle = json.loads(text)
    sig = base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"])
    flipped = sig[:-1] + bytes([sig[-1] ^ 1])
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(flipped).decode()
    return json.dumps(bundle)


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (lambda t: t[: len(t) // 2], "not JSON"),
        (lambda t: "", "not JSON"),
        (lambda t: "[1, 2]", "(root)"),
        (lambda t: "\xff\xfe garbage", "not JSON"),
        (_media, "media type"),
        (_payload_type, "payload type"),
        (_corrupt_payload, "does not verify"),
        (_bad_signature, "does not verify"),
    ],
    ids=["truncated", "empty", "not-object", "binary", "media", "payload-type", "payload", "sig"],
)
def test_corrupted_bundle_is_invalid_not_a_crash(
    signed: Path, keys: tuple[Path, Path], corrupt: object, reason: str
) -> None:
    path = signed / "model.sig"
    path.write_text(corrupt(path.read_text()))  # type: ignore[operator]
    report = _scan(signed, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert reason in sig.reason
    assert "\n" not in sig.reason
    assert report.verdict.decision.value == "deny"


def test_signature_without_trust_is_not_checked(signed: Path) -> None:
    report = _scan(signed)
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.NOT_CHECKED
    assert "--public-key" in sig.reason
    assert "SIGNATURE-NOT-CHECKED" in _codes(report)


def test_unsigned_model_is_absent_and_required_absence_is_high(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    model = make_model(tmp_path / "plain")
    report = _scan(model)
    assert report.signature is not None and report.signature.status is SignatureStatus.ABSENT
    assert not {c for c in _codes(report) if c.startswith("SIGNATURE")}
    required = _scan(model, public_keys=_keys(keys[1]))
    assert required.signature is not None
    assert required.signature.status is SignatureStatus.ABSENT
    [finding] = [f for f in required.findings if f.code == "SIGNATURE-ABSENT"]
    assert finding.severity.value == "high"
    assert required.verdict.decision.value == "deny"


def test_signature_given_by_path(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    model = make_model(tmp_path / "model")
    sign_with_key(model, keys[0])
    outside = tmp_path / "detached.sig"
    (model / "model.sig").rename(outside)
    report = _scan(model, public_keys=_keys(keys[1]), signature_path=str(outside))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.VERIFIED, report.signature.reason
    assert report.signature.outside == ()


def test_ignored_folder_is_still_scanned_and_reported_outside(
    tmp_path: Path, keys: tuple[Path, Path], marker_dir: Path
) -> None:
    model = make_model(tmp_path / "model")
    (model / "extras").mkdir()
    config = hashing.Config().set_ignored_paths(paths=["extras"])
    sign_with_key(model, keys[0], hashing_config=config)
    payload = pickle.dumps(__import__("os").system)  # a global that runs commands
    (model / "extras" / "helper.pkl").write_bytes(payload)
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert "extras/helper.pkl" in sig.outside
    outside = [f for f in report.findings if f.code == "SIGNATURE-OUTSIDE"]
    assert "extras/helper.pkl" in {f.file for f in outside}
    assert any(
        f.file == "extras/helper.pkl" and f.code == "PICKLE-DANGEROUS-GLOBAL"
        for f in report.findings
    )
    assert report.verdict.decision.value == "deny"


@pytest.mark.parametrize("algorithm", ["sha256", "blake2"])
def test_sharded_signature_is_verified_in_the_same_pass(
    tmp_path: Path, keys: tuple[Path, Path], algorithm: str
) -> None:
    model = make_model(tmp_path / "model")
    config = hashing.Config().use_shard_serialization(
        hashing_algorithm=algorithm,  # type: ignore[arg-type]
        shard_size=1000,
    )
    sign_with_key(model, keys[0], hashing_config=config)
    bundle = json.loads((model / "model.sig").read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert isinstance(statement["predicate"]["serialization"]["shard_size"], float)
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.digest_algorithm is not None and "sharded-1000" in sig.digest_algorithm

    data = bytearray((model / "weights.bin").read_bytes())
    data[2500] ^= 0xFF
    (model / "weights.bin").write_bytes(bytes(data))
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.changed == ("weights.bin:2000:3000",)


def test_blake2b_file_signature_is_verified(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    model = make_model(tmp_path / "model")
    config = hashing.Config().use_file_serialization(hashing_algorithm="blake2")
    sign_with_key(model, keys[0], hashing_config=config)
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.digest_algorithm == "blake2b"
    (model / "config.json").write_text("{}\n")
    report = _scan(model, public_keys=_keys(keys[1]))
    assert report.signature is not None
    assert report.signature.diff.changed == ("config.json",)


def test_blake3_signature_is_not_checked_never_verified(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    model = make_model(tmp_path / "model")
    config = hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    sign_with_key(model, keys[0], hashing_config=config)
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.NOT_CHECKED
    assert "blake3" in sig.reason
    assert "SIGNATURE-UNVERIFIABLE" in _codes(report)
    assert report.verdict.decision.value == "deny"


# Certificate method ------------------------------------------------------------------------


def _chain_trust(chain: Chain) -> dict[str, object]:
    return {"certificate_chain": _keys(chain.root, chain.intermediate)}


def test_valid_certificate_signature_records_subject_and_usage(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, **_chain_trust(chain))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.VERIFIED, sig.reason
    assert sig.method is SignatureMethod.CERTIFICATE
    assert sig.signer == "signer@example.com"
    assert sig.certificate_subject == "CN=ca signer"
    assert sig.issuer == "CN=ca intermediate"
    assert set(sig.key_usage) == {"digital-signature", "code-signing"}


def test_root_alone_is_enough_when_the_bundle_carries_the_intermediate(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, certificate_chain=_keys(chain.root))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.VERIFIED, report.signature.reason


def test_intermediate_alone_is_not_an_anchor(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, certificate_chain=_keys(chain.intermediate))
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID
    assert "no self-signed root" in report.signature.reason


def test_certificate_outside_the_given_chain_is_invalid(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    stranger = make_chain(tmp_path, "stranger")
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, **_chain_trust(stranger))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert "does not chain" in sig.reason


def test_expired_leaf_is_invalid(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, leaf_expired=True)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, **_chain_trust(chain))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert "does not chain" in sig.reason


def test_leaf_without_signing_usage_is_invalid(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, leaf_usage="none")
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, **_chain_trust(chain))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert "neither digital signatures nor code signing" in sig.reason


def test_certificate_signature_with_only_a_key_given_is_invalid(
    tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    report = _scan(model, public_keys=_keys(keys[1]))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert "--certificate-chain" in sig.reason


def test_certificate_signature_modified_file(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    model = make_model(tmp_path / "model")
    sign_with_certificate(model, chain)
    (model / "config.json").write_text('{"hidden_size": 9}\n')
    report = _scan(model, **_chain_trust(chain))
    sig = report.signature
    assert sig is not None and sig.status is SignatureStatus.INVALID
    assert sig.diff.changed == ("config.json",)
