"""`verifier pull`: scan as `scan` does, then place the verified bytes in the HF cache layout."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.sources.test_huggingface import model_files
from verifier.cli import cli


def pull(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, ["pull", *args, "--format", "json"], catch_exceptions=False)
    doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, doc, result.stderr


def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "hf-home" / "hub"  # where the `hub` fixture's HF_HOME puts the cache


def offline(code: str, cache: Path) -> Any:
    """Run `code` in a fresh interpreter with huggingface_hub offline; return its JSON output."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(cache),
        "HF_ENDPOINT": "http://127.0.0.1:9",  # closed: any request would fail
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


OFFLINE_LOAD = """
import hashlib, json, os
from huggingface_hub import hf_hub_download, snapshot_download
folder = snapshot_download("acme/tiny")
files = {}
for base, _dirs, names in os.walk(folder):
    for name in names:
        path = os.path.join(base, name)
        files[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
one = hf_hub_download("acme/tiny", "model.safetensors")
by_commit = snapshot_download("acme/tiny", revision=REVISION)
print(json.dumps({"folder": folder, "files": files, "one": one, "by_commit": by_commit,
                  "one_sha256": hashlib.sha256(open(one, "rb").read()).hexdigest()}))
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_pulled_model_loads_offline_with_huggingface_hub(hub: HubEmulator, tmp_path: Path) -> None:
    files = model_files()
    repo = hub.add_repo("acme/tiny", files)
    commit = repo.refs["main"]
    code, doc, err = pull("hf://acme/tiny")
    assert code == 0, err
    assert doc["source"]["commit"] == commit  # the scan document, as `scan --format json`
    assert f"acme/tiny@{commit}" in err
    downloads = len(hub.downloads())
    hub.stop()  # nothing can be fetched from here on

    result = offline(OFFLINE_LOAD.replace("REVISION", repr(commit)), cache_dir(tmp_path))
    snapshot = cache_dir(tmp_path) / "models--acme--tiny" / "snapshots" / commit
    assert Path(result["folder"]) == snapshot
    assert Path(result["by_commit"]) == snapshot
    assert result["files"] == {path: sha256(data) for path, data in files.items()}
    assert result["one_sha256"] == sha256(files["model.safetensors"])
    assert len(hub.downloads()) == downloads
    ref = cache_dir(tmp_path) / "models--acme--tiny" / "refs" / "main"
    assert ref.read_text() == commit
    # Links are relative, into the repository's blobs, named as huggingface_hub names them.
    link = snapshot / "sub" / "tokenizer.json"
    assert os.readlink(link).startswith("../../../blobs/")
    weights = os.readlink(snapshot / "model.safetensors")
    assert weights == "../../blobs/" + sha256(files["model.safetensors"])


def test_pull_places_the_verified_copy_without_downloading_again(
    hub: HubEmulator, tmp_path: Path
) -> None:
    hub.add_repo("acme/tiny", model_files())
    assert pull("hf://acme/tiny")[0] == 0
    before = len(hub.downloads())
    code, _doc, err = pull("hf://acme/tiny")
    assert code == 0, err
    assert "unchanged acme/tiny@" in err
    # Only the small git files are fetched again by the scan; the weights come from the store.
    again = hub.downloads()[before:]
    assert not any(path.endswith("model.safetensors") for path in again)


def test_denied_model_places_nothing(hub: HubEmulator, tmp_path: Path, marker_dir: Path) -> None:
    files = {**model_files(), "pytorch_model.bin": os_system(marker_dir)}
    hub.add_repo("acme/evil", files)
    code, doc, err = pull("hf://acme/evil")
    assert code == 1
    assert doc["decision"] == "deny"
    assert "not placed" in err
    assert not (cache_dir(tmp_path) / "models--acme--evil").exists()
    local = tmp_path / "local"
    assert pull("hf://acme/evil", "--local-dir", str(local))[0] == 1
    assert not local.exists()


def test_tampered_blob_is_reported_and_replaced_only_with_force(
    hub: HubEmulator, tmp_path: Path
) -> None:
    files = model_files()
    repo = hub.add_repo("acme/tiny", files)
    assert pull("hf://acme/tiny")[0] == 0
    blob = cache_dir(tmp_path) / "models--acme--tiny" / "blobs" / sha256(files["model.safetensors"])
    tampered = bytearray(files["model.safetensors"])
    tampered[-1] ^= 0xFF  # same size, other bytes: what huggingface_hub itself would not notice
    blob.chmod(0o644)
    blob.write_bytes(bytes(tampered))

    code, _doc, err = pull("hf://acme/tiny")
    assert code == 3
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert "holds other bytes" in line and "--force" in line
    assert f"acme/tiny@{repo.refs['main']}" in line
    assert blob.read_bytes() == bytes(tampered)  # reported, not replaced

    code, _doc, err = pull("hf://acme/tiny", "--force")
    assert code == 0, err
    assert "replaced acme/tiny@" in err
    assert blob.read_bytes() == files["model.safetensors"]


def test_unverified_file_in_the_snapshot_is_a_conflict(hub: HubEmulator, tmp_path: Path) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    assert pull("hf://acme/tiny", "--include", "*.safetensors")[0] == 0
    snapshot = cache_dir(tmp_path) / "models--acme--tiny" / "snapshots" / repo.refs["main"]
    assert sorted(p.name for p in snapshot.iterdir()) == ["model.safetensors"]
    (snapshot / "pytorch_model.bin").write_bytes(b"not verified")
    code, _doc, err = pull("hf://acme/tiny", "--include", "*.safetensors")
    assert code == 3
    assert "pytorch_model.bin is in the snapshot but was not verified" in err
    assert pull("hf://acme/tiny", "--include", "*.safetensors", "--force")[0] == 0
    assert sorted(p.name for p in snapshot.iterdir()) == ["model.safetensors"]


def test_partial_pull_reads_as_partial_offline(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    assert pull("hf://acme/tiny", "--include", "*.safetensors")[0] == 0
    hub.stop()
    code = """
import json
from huggingface_hub import snapshot_download
from huggingface_hub.errors import IncompleteSnapshotError
try:
    snapshot_download("acme/tiny")
    print(json.dumps("complete"))
except IncompleteSnapshotError:
    print(json.dumps("incomplete"))
"""
    assert offline(code, cache_dir(tmp_path)) == "incomplete"


def test_pull_into_a_local_dir(hub: HubEmulator, tmp_path: Path) -> None:
    files = model_files()
    hub.add_repo("acme/tiny", files)
    local = tmp_path / "models" / "tiny"
    code, _doc, err = pull("hf://acme/tiny", "--local-dir", str(local))
    assert code == 0, err
    placed = {
        p.relative_to(local).as_posix(): p.read_bytes() for p in local.rglob("*") if p.is_file()
    }
    assert placed == files
    assert not any(p.is_symlink() for p in local.rglob("*"))
    assert sorted(os.listdir(local.parent)) == ["tiny"]  # no staging folder left behind
    (local / "config.json").write_bytes(b"{}")
    assert pull("hf://acme/tiny", "--local-dir", str(local))[0] == 3
    assert pull("hf://acme/tiny", "--local-dir", str(local), "--force")[0] == 0
    assert (local / "config.json").read_bytes() == files["config.json"]


def test_pull_from_a_lockfile_refuses_drift(hub: HubEmulator, tmp_path: Path) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    lock = tmp_path / "models.lock"
    result = CliRunner().invoke(cli, ["lock", "hf://acme/tiny", "-o", str(lock)])
    assert result.exit_code == 0, result.stderr
    code, _doc, err = pull("--lock", str(lock))
    assert code == 0, err
    first = repo.refs["main"]
    repo.commit(model_files(fill=2))  # main moves: drift from the lock
    code, _doc, err = pull("--lock", str(lock))
    assert code == 1
    assert "drifted from its lockfile entry" in err
    ref = cache_dir(tmp_path) / "models--acme--tiny" / "refs" / "main"
    assert ref.read_text() == first


def test_pull_takes_only_hub_models(tmp_path: Path, tiny_model: Path) -> None:
    result = CliRunner().invoke(cli, ["pull", str(tiny_model)])
    assert result.exit_code == 2
    assert "hf://" in result.stderr
    result = CliRunner().invoke(
        cli, ["pull", "hf://a/b", "--local-dir", str(tmp_path), "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 2


def test_a_tag_is_written_as_the_client_reads_it(hub: HubEmulator, tmp_path: Path) -> None:
    revision = "v1.0"
    repo = hub.add_repo("acme/tiny", None)
    commit = repo.commit(model_files(), branch=revision)
    code, _doc, err = pull(f"hf://acme/tiny@{revision}")
    assert code == 0, err
    ref = cache_dir(tmp_path) / "models--acme--tiny" / "refs" / revision
    assert ref.read_text() == commit


AUDIT = """
version: 1
name: audit-only
mode: audit
default: allow
rules:
  - id: no-high-or-critical-findings
    effect: deny
    message: m
    match: {finding_severity_at_least: high}
"""


def test_audit_mode_deny_exits_0_for_scan_but_pull_places_nothing(
    hub: HubEmulator, tmp_path: Path, marker_dir: Path
) -> None:
    hub.add_repo("acme/evil", {**model_files(), "pytorch_model.bin": os_system(marker_dir)})
    policy = tmp_path / "audit.yaml"
    policy.write_text(AUDIT)
    scanned = CliRunner().invoke(cli, ["scan", "hf://acme/evil", "--policy", str(policy)])
    assert scanned.exit_code == 0
    code, doc, err = pull("hf://acme/evil", "--policy", str(policy))
    assert (code, doc["decision"]) == (1, "deny")
    assert "not placed" in err
    assert not (cache_dir(tmp_path) / "models--acme--evil").exists()


def test_weights_scanned_only_locally_are_downloaded_for_a_pull(
    hub: HubEmulator, tmp_path: Path
) -> None:
    files = model_files()
    hub.add_repo("acme/tiny", files)
    local = tmp_path / "copy"
    local.mkdir()
    (local / "model.safetensors").write_bytes(files["model.safetensors"])
    assert CliRunner().invoke(cli, ["scan", str(local)]).exit_code == 0  # recorded, not stored
    code, _doc, err = pull("hf://acme/tiny")
    assert code == 0, err
    assert any(path.endswith("model.safetensors") for path in hub.downloads())


def test_a_verified_copy_gone_from_the_store_is_downloaded_again(
    hub: HubEmulator, tmp_path: Path, isolated_home: Path
) -> None:
    files = model_files()
    hub.add_repo("acme/tiny", files)
    assert pull("hf://acme/tiny")[0] == 0
    digest = sha256(files["model.safetensors"])
    stored = isolated_home / "blobs" / "sha256" / digest[:2] / digest
    stored.unlink()
    before = len(hub.downloads())
    code, _doc, err = pull("hf://acme/tiny", "--local-dir", str(tmp_path / "again"))
    assert code == 0, err
    assert any(p.endswith("model.safetensors") for p in hub.downloads()[before:])
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == files["model.safetensors"]


def test_a_declared_path_that_escapes_places_nothing(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/escape", {**model_files(), "sub/../../outside.json": b"{}"})
    code, doc, err = pull("hf://acme/escape")
    assert code == 1, err
    assert "HF-PATH-ESCAPE" in {f["code"] for f in doc["findings"]}
    assert not (cache_dir(tmp_path) / "models--acme--escape").exists()
    assert not list(tmp_path.rglob("outside.json"))
