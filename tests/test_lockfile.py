"""`verifier lock` and `verifier scan --lock` against the Hub emulator: drift fails with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import model_files, safetensors_file
from verifier.cli import cli
from verifier.errors import LockfileError
from verifier.lockfile import read_lock


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def drift_of(stdout: str) -> list[tuple[str | None, str]]:
    doc = json.loads(stdout)
    return [(f["file"], f["message"]) for f in doc["findings"] if f["code"] == "LOCK-DRIFT"]


def test_lock_then_scan_without_drift(hub: HubEmulator, tmp_path: Path) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    hub.add_repo("acme/other", model_files(fill=4))
    lockfile = tmp_path / "models.lock"
    code, _, err = run("lock", "hf://acme/tiny", "hf://acme/other@main", "-o", str(lockfile))
    assert code == 0, err
    doc = json.loads(lockfile.read_text())
    assert [m["repo_id"] for m in doc["models"]] == ["acme/other", "acme/tiny"]
    tiny = doc["models"][1]
    assert tiny["commit"] == repo.refs["main"] and tiny["target"] == "hf://acme/tiny@main"
    assert {f["path"] for f in tiny["files"]} == set(model_files())
    assert all(len(f["sha256"]) == 64 for f in tiny["files"])
    code, out, _ = run("scan", "--lock", str(lockfile), "--format", "json")
    assert code == 0
    assert [s["source"]["repo_id"] for s in json.loads(out)["scans"]] == [
        "acme/other",
        "acme/tiny",
    ]
    code, out, _ = run("scan", "hf://acme/tiny", "--lock", str(lockfile), "--format", "json")
    assert code == 0 and drift_of(out) == []


def test_moved_branch_and_changed_added_removed_files_drift(
    hub: HubEmulator, tmp_path: Path
) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    lockfile = tmp_path / "models.lock"
    assert run("lock", "hf://acme/tiny", "-o", str(lockfile))[0] == 0
    files = model_files()
    files["model.safetensors"] = safetensors_file(fill=8)
    files["extra.json"] = b"{}"
    del files["sub/tokenizer.json"]
    repo.commit(files)
    code, out, _ = run("scan", "hf://acme/tiny", "--lock", str(lockfile), "--format", "json")
    assert code == 1
    found = drift_of(out)
    assert (None, "acme/tiny@main now resolves to another commit than locked") in found
    assert {path for path, _ in found} == {
        None,
        "model.safetensors",
        "extra.json",
        "sub/tokenizer.json",
    }


def test_lock_refuses_a_denied_model(hub: HubEmulator, tmp_path: Path) -> None:
    repo = hub.add_repo("acme/tiny", model_files())
    repo.served[(repo.refs["main"], "model.safetensors")] = safetensors_file(fill=3)
    lockfile = tmp_path / "models.lock"
    code, _, err = run("lock", "hf://acme/tiny", "-o", str(lockfile))
    assert code == 1 and "no lockfile written" in err
    assert not lockfile.exists()


def test_scan_lock_usage_errors(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    lockfile = tmp_path / "models.lock"
    assert run("lock", "hf://acme/tiny", "-o", str(lockfile))[0] == 0
    assert run("scan", "hf://acme/nothere", "--lock", str(lockfile))[0] == 2
    assert run("scan", "--lock", str(lockfile), "--metadata-only")[0] == 2
    assert run("scan", "--lock", str(tmp_path / "missing.lock"))[0] == 2
    assert run("scan")[0] == 2
    assert run("lock", str(tmp_path), "-o", str(lockfile))[0] == 2


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '{"version": 2, "models": []}',
        '{"version": 1, "models": [{"repo_id": "a/b", "revision": "main", "commit": "xyz",'
        ' "files": []}]}',
        '{"version": 1, "models": [{"repo_id": "a/b", "revision": "main", "commit": "'
        + "a" * 40
        + '", "files": [{"path": "x", "size": true, "sha256": "'
        + "b" * 64
        + '"}]}]}',
    ],
)
def test_malformed_lockfiles_are_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.lock"
    path.write_text(content)
    with pytest.raises(LockfileError):
        read_lock(path)


def test_documented_lockfile_example_is_valid(tmp_path: Path) -> None:
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "huggingface.md").read_text()
    [example] = re.findall(r"```json\n(.*?)```", doc, re.S)
    path = tmp_path / "example.lock"
    path.write_text(example)
    [model] = read_lock(path)
    assert model.target == json.loads(example)["models"][0]["target"]
