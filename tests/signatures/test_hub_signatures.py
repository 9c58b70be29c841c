"""Signatures of Hub models: `model.sig` fetched from the pinned commit and checked, through the
real huggingface_hub client against the Hub emulator; `--metadata-only` compares the signed
digests with the Hub's declared LFS digests before anything large is downloaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_signing import hashing

from tests.hub_emulator import HubEmulator
from tests.signatures.signing import make_model, sign_with_key, write_key
from tests.sources.test_huggingface import model_files, safetensors_file, scan
from verifier.model import ScanReport, SignatureStatus
from verifier.pipeline import run_scan
from verifier.policy import default_policy_path, load_policy
from verifier.signatures.interface import SignatureRequest


def _signed_files(
    tmp_path: Path, files: dict[str, bytes], *, config: hashing.Config | None = None
) -> tuple[dict[str, bytes], Path]:
    """`files` plus a model.sig made by model_signing over them, and the public key."""
    folder = tmp_path / "to-sign"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    private, public = write_key(tmp_path, "publisher")
    sign_with_key(folder, private, hashing_config=config)
    return {**files, "model.sig": (folder / "model.sig").read_bytes()}, public


def test_hub_model_signature_is_fetched_and_verified(hub: HubEmulator, tmp_path: Path) -> None:
    files, public = _signed_files(tmp_path, model_files())
    hub.add_repo("acme/signed", files)
    code, doc, err = scan("hf://acme/signed", "--public-key", str(public))
    assert code == 0, (doc, err)
    sig = doc["signature"]
    assert sig["status"] == "verified", sig
    assert sig["method"] == "key" and sig["signer"].startswith("sha256:")
    assert sig["outside"] == ["model.sig"]
    assert "SIGNATURE-VERIFIED" in {f["code"] for f in doc["findings"]}


def test_hub_model_changed_after_signing_is_invalid(hub: HubEmulator, tmp_path: Path) -> None:
    files, public = _signed_files(tmp_path, model_files())
    repo = hub.add_repo("acme/signed", files)
    repo.commit({**files, "model.safetensors": safetensors_file(fill=3)})
    code, doc, _ = scan("hf://acme/signed", "--public-key", str(public))
    assert code == 1
    assert doc["signature"]["status"] == "invalid"
    assert doc["signature"]["diff"]["changed"] == ["model.safetensors"]


def test_metadata_only_tells_a_matching_signature_before_download(
    hub: HubEmulator, tmp_path: Path
) -> None:
    weights_only = {
        "model.safetensors": safetensors_file(),
        "extra.safetensors": safetensors_file(8),
    }
    files, public = _signed_files(tmp_path, weights_only)
    hub.add_repo("acme/weights", files)
    code, doc, _ = scan("hf://acme/weights", "--metadata-only", "--public-key", str(public))
    assert code == 3  # metadata only is never an allow
    sig = doc["signature"]
    assert sig["status"] == "verified", sig
    assert "declared LFS digest" in sig["reason"]
    # The weights' bytes were not read (only their headers, by range): no digest measured.
    assert all(f["sha256"] is None for f in doc["files"] if f["path"].endswith(".safetensors"))


def test_metadata_only_tells_a_mismatching_revision_before_download(
    hub: HubEmulator, tmp_path: Path
) -> None:
    files, public = _signed_files(tmp_path, model_files())
    repo = hub.add_repo("acme/signed", files)
    repo.commit({**files, "model.safetensors": safetensors_file(fill=5)})
    code, doc, _ = scan("hf://acme/signed", "--metadata-only", "--public-key", str(public))
    assert code == 3
    sig = doc["signature"]
    assert sig["status"] == "invalid"
    assert sig["diff"]["changed"] == ["model.safetensors"]


def test_metadata_only_small_git_files_are_not_compared(hub: HubEmulator, tmp_path: Path) -> None:
    files, public = _signed_files(tmp_path, model_files())
    hub.add_repo("acme/signed", files)
    code, doc, _ = scan("hf://acme/signed", "--metadata-only", "--public-key", str(public))
    assert code == 3
    sig = doc["signature"]
    assert sig["status"] == "not-checked", sig
    assert "config.json" in sig["reason"]


def test_a_hub_signature_is_downloaded_once(hub: HubEmulator, tmp_path: Path) -> None:
    # Read once as the signature, then scanned and verified with the other files from the
    # same bytes: the Source seam's side file is not fetched a second time.
    files, public = _signed_files(tmp_path, model_files())
    hub.add_repo("acme/signed", files)
    code, doc, _ = scan("hf://acme/signed", "--public-key", str(public))
    assert code == 0, doc
    assert [p for p in hub.downloads() if p.endswith("/model.sig")] != []
    assert len([p for p in hub.downloads() if p.endswith("/model.sig")]) == 1
    assert "model.sig" in {f["path"] for f in doc["files"]}


def test_tampered_signature_file_on_the_hub_is_invalid(hub: HubEmulator, tmp_path: Path) -> None:
    files, public = _signed_files(tmp_path, model_files())
    repo = hub.add_repo("acme/signed", files)
    bundle: dict[str, Any] = json.loads(files["model.sig"])
    bundle["mediaType"] = bundle["mediaType"].replace("0.3", "0.2")
    forged = json.dumps(bundle).encode()
    repo.served[(repo.refs["main"], "model.sig")] = forged[: len(files["model.sig"])].ljust(
        len(files["model.sig"]), b" "
    )
    code, doc, _ = scan("hf://acme/signed", "--public-key", str(public))
    assert code == 1
    sig = doc["signature"]
    assert sig["status"] == "invalid"
    assert "the digest the commit declares" in sig["reason"]
    # The file's own check says so too, from the same bytes (fetched once).
    assert [f["file"] for f in doc["findings"] if f["code"] == "HF-DIGEST-MISMATCH"] == [
        "model.sig"
    ]
    assert len([p for p in hub.downloads() if p.endswith("/model.sig")]) == 1


def test_sharded_hub_signature_is_computed_in_the_download_pass(
    hub: HubEmulator, tmp_path: Path
) -> None:
    config = hashing.Config().use_shard_serialization(shard_size=64)
    files, public = _signed_files(tmp_path, model_files(), config=config)
    hub.add_repo("acme/sharded", files)
    code, doc, _ = scan("hf://acme/sharded", "--public-key", str(public))
    assert code == 0, doc
    assert doc["signature"]["status"] == "verified"
    assert doc["signature"]["digest_algorithm"] == "sha256-sharded-64"


def test_hub_signature_without_trust_is_not_checked(hub: HubEmulator, tmp_path: Path) -> None:
    files, _ = _signed_files(tmp_path, model_files())
    hub.add_repo("acme/signed", files)
    code, doc, _ = scan("hf://acme/signed")
    assert code == 0
    assert doc["signature"]["status"] == "not-checked"


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
