"""A `model.sig` published in a Hub repository is fetched, checked and verified like a local one."""

from __future__ import annotations

from pathlib import Path

from tests.hub_emulator import HubEmulator
from tests.signatures.signing import make_model, sign_with_key, write_key
from verifier.model import ScanReport, SignatureStatus
from verifier.pipeline import run_scan
from verifier.policy import default_policy_path, load_policy
from verifier.signatures.interface import SignatureRequest


def _publish(hub: HubEmulator, folder: Path) -> None:
    files = {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
    hub.add_repo("acme/signed", files)


def _scan(public_key: Path) -> ScanReport:
    request = SignatureRequest(public_keys=((str(public_key), public_key.read_bytes()),))
    return run_scan(
        "hf://acme/signed",
        policy=load_policy(default_policy_path()),
        recorder=None,
        signature=request,
    )


def test_signature_published_on_the_hub_is_verified(hub: HubEmulator, tmp_path: Path) -> None:
    private, public = write_key(tmp_path, "signer")
    model = make_model(tmp_path / "model")
    sign_with_key(model, private)
    _publish(hub, model)
    report = _scan(public)
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.VERIFIED, report.signature.reason
    assert report.verdict.decision.value == "allow"


def test_file_changed_after_signing_is_not_verified(hub: HubEmulator, tmp_path: Path) -> None:
    private, public = write_key(tmp_path, "signer")
    model = make_model(tmp_path / "model")
    sign_with_key(model, private)
    (model / "config.json").write_text('{"hidden_size": 9}\n')  # published after signing
    _publish(hub, model)
    report = _scan(public)
    assert report.signature is not None
    assert report.signature.status is not SignatureStatus.VERIFIED
    assert "config.json" in str(report.signature.diff)


def test_tampered_signature_bytes_are_invalid(hub: HubEmulator, tmp_path: Path) -> None:
    private, public = write_key(tmp_path, "signer")
    model = make_model(tmp_path / "model")
    sign_with_key(model, private)
    _publish(hub, model)
    repo = hub.repos["acme/signed"]
    genuine = repo.commits[repo.refs["main"]]["model.sig"]
    repo.served[(repo.refs["main"], "model.sig")] = genuine[:-2] + b"  "
    report = _scan(public)
    assert report.signature is not None
    assert report.signature.status is SignatureStatus.INVALID
    assert "declares" in report.signature.reason
    assert report.verdict.decision.value == "deny"
