"""`verifier approve`: the organisation's countersignature, checked by the real model_signing."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from model_signing import verifying

from tests import samples
from tests.evidence.keys import fixed_ed25519, p256, write_pair
from verifier.cli import cli
from verifier.errors import StoreError
from verifier.store import Store


def _run(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _scan(model: Path, database_url: str) -> tuple[int, str]:
    code, out, _ = _run("scan", str(model), "--format", "json", database_url=database_url)
    return code, json.loads(out)["scan_id"]


def _model_signing_verifies(model: Path, signature: Path, public: Path) -> None:
    verifying.Config().use_elliptic_key_verifier(public_key=public).verify(model, signature)


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_approval_is_accepted_by_model_signing(
    tiny_model: Path, sqlite_url: str, tmp_path: Path, curve: ec.EllipticCurve
) -> None:
    code, scan_id = _scan(tiny_model, sqlite_url)
    assert code == 0
    private, public = write_pair(tmp_path / "keys", "org", ec.generate_private_key(curve))
    signature = tmp_path / "approval.sig"
    code, stdout, err = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(private),
        "-o",
        str(signature),
        database_url=sqlite_url,
    )
    assert code == 0, err
    assert stdout == "" and "approved pkg:generic/tiny-model" in err
    _model_signing_verifies(tiny_model, signature, public)
    # The model_signing command line accepts it too.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            str(tiny_model),
            "--signature",
            str(signature),
            "--public_key",
            str(public),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Another key, or one changed byte in the model, and model_signing refuses it.
    _, other = write_pair(tmp_path / "keys", "other", p256())
    with pytest.raises(ValueError):
        _model_signing_verifies(tiny_model, signature, other)
    weights = tiny_model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="mismatch"):
        _model_signing_verifies(tiny_model, signature, public)


def test_approval_inside_the_model_folder_leaves_itself_out(
    tiny_model: Path, sqlite_url: str, tmp_path: Path
) -> None:
    _, scan_id = _scan(tiny_model, sqlite_url)
    private, public = write_pair(tmp_path / "keys", "org", p256())
    signature = tiny_model / "org-approval.sig"
    code, _, err = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(private),
        "-o",
        str(signature),
        database_url=sqlite_url,
    )
    assert code == 0, err
    _model_signing_verifies(tiny_model, signature, public)


def test_denied_model_is_refused_and_nothing_is_written(
    tmp_path: Path, sqlite_url: str, marker_dir: Path
) -> None:
    model = tmp_path / "bad-model"
    model.mkdir()
    (model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    code, scan_id = _scan(model, sqlite_url)
    assert code == 1
    private, _ = write_pair(tmp_path / "keys", "org", p256())
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(private),
        "-o",
        str(out / "approval.sig"),
        database_url=sqlite_url,
    )
    assert code == 1 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and "decision deny" in err
    assert list(out.iterdir()) == []


def test_bad_key_or_target_is_exit_2(tiny_model: Path, sqlite_url: str, tmp_path: Path) -> None:
    _, scan_id = _scan(tiny_model, sqlite_url)
    ed_key, _ = write_pair(tmp_path / "keys", "ed", fixed_ed25519())
    out = tmp_path / "approval.sig"
    code, _, err = _run(
        "approve", scan_id, "--signing-key", str(ed_key), "-o", str(out), database_url=sqlite_url
    )
    assert code == 2 and "EC P-256" in err and not out.exists()
    private, _ = write_pair(tmp_path / "keys", "org", p256())
    code, _, err = _run(
        "approve",
        "feedfacefeedfacefeedfacefeedface",
        "--signing-key",
        str(private),
        "-o",
        str(out),
        database_url=sqlite_url,
    )
    assert code == 2 and "no recorded scan" in err and not out.exists()
    code, _, err = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(tmp_path / "none.pem"),
        "-o",
        str(out),
        database_url=sqlite_url,
    )
    assert code == 2 and "not found" in err and not out.exists()


def _approvals(scan_id: str, database_url: str) -> list[dict[str, object]]:
    code, out, err = _run("show", scan_id, "--format", "json", database_url=database_url)
    assert code == 0, err
    approvals: list[dict[str, object]] = json.loads(out)["approvals"]
    return approvals


def test_every_approval_is_recorded_in_the_audit_trail(
    tiny_model: Path, database_url: str, tmp_path: Path
) -> None:
    _, scan_id = _scan(tiny_model, database_url)
    assert _approvals(scan_id, database_url) == []
    private, public = write_pair(tmp_path / "keys", "org", p256())
    written = []
    for name in ("first.sig", "second.sig"):
        out = tmp_path / name
        code, _, err = _run(
            "approve",
            scan_id,
            "--signing-key",
            str(private),
            "-o",
            str(out),
            database_url=database_url,
        )
        assert code == 0, err
        written.append(out)
    approvals = _approvals(scan_id, database_url)
    fingerprint = hashlib.sha256(public.read_bytes()).hexdigest()
    assert [a["output"] for a in approvals] == [str(p) for p in written]
    for approval, out in zip(approvals, written, strict=True):
        assert approval["bundle_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
        assert approval["key_fingerprint"] == fingerprint
        bundle = json.loads(out.read_bytes())
        assert bundle["verificationMaterial"]["publicKey"]["hint"] == fingerprint
        assert approval["files"] == len(
            json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))["predicate"][
                "resources"
            ]
        )
    # The table output shows them too.
    code, out, _ = _run("show", scan_id, database_url=database_url)
    assert code == 0 and out.count("approved ") == 2


def test_refused_approval_records_nothing(
    tmp_path: Path, sqlite_url: str, marker_dir: Path
) -> None:
    model = tmp_path / "bad-model"
    model.mkdir()
    (model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    _, scan_id = _scan(model, sqlite_url)
    private, _ = write_pair(tmp_path / "keys", "org", p256())
    code, _, _ = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(private),
        "-o",
        str(tmp_path / "a.sig"),
        database_url=sqlite_url,
    )
    assert code == 1
    assert _approvals(scan_id, sqlite_url) == []


def test_approval_that_cannot_be_recorded_leaves_no_bundle(
    tiny_model: Path, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, scan_id = _scan(tiny_model, sqlite_url)
    private, _ = write_pair(tmp_path / "keys", "org", p256())

    def refuse(self: Store, scan_id: str, approval: object) -> None:
        raise StoreError("cannot record an approval in the database: disk full")

    monkeypatch.setattr(Store, "record_approval", refuse)
    out = tmp_path / "approval.sig"
    code, stdout, err = _run(
        "approve",
        scan_id,
        "--signing-key",
        str(private),
        "-o",
        str(out),
        database_url=sqlite_url,
    )
    assert code == 3 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and "disk full" in err
    assert not out.exists() and list(tmp_path.glob(".approval.sig.*")) == []
