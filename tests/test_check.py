"""`verifier check PATH --lock FILE`: the load-time gate for a model already on disk."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import model_files
from tests.test_imports import _heavy, _loaded_after
from verifier.cli import cli
from verifier.lockfile import LockedFile, LockedModel, write_lock

COMMIT = "c" * 40


def make_model(folder: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)


def locked(files: dict[str, bytes], repo_id: str = "acme/tiny") -> LockedModel:
    entries = tuple(
        LockedFile(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in sorted(files.items())
    )
    return LockedModel(repo_id, "main", COMMIT, "https://huggingface.co", entries)


def check(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, ["check", *args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else result.stderr


def drift(doc: Any) -> list[tuple[str, str | None]]:
    return sorted((f["code"], f["file"]) for f in doc["findings"])


def setup(tmp_path: Path) -> tuple[Path, Path]:
    files = model_files()
    model = tmp_path / "model"
    make_model(model, files)
    lock = tmp_path / "models.lock"
    write_lock(lock, [locked(files)])
    return model, lock


def test_matching_folder_passes(tmp_path: Path) -> None:
    model, lock = setup(tmp_path)
    code, doc = check(str(model), "--lock", str(lock))
    assert code == 0
    assert (doc["matched"], doc["complete"], doc["schema_version"]) == (True, True, 2)
    assert len(doc["files"]) == 4
    table = CliRunner().invoke(cli, ["check", str(model), "--lock", str(lock)])
    assert table.exit_code == 0
    assert f"matches acme/tiny@{COMMIT} (4 files hashed, 4 locked)" in table.stdout


def test_changed_missing_and_extra_files_are_drift(tmp_path: Path) -> None:
    model, lock = setup(tmp_path)
    weights = model / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    (model / "config.json").unlink()
    (model / "pytorch_model.bin").write_bytes(b"extra")
    code, doc = check(str(model), "--lock", str(lock))
    assert code == 1
    assert drift(doc) == [
        ("LOCK-DRIFT", "config.json"),
        ("LOCK-DRIFT", "model.safetensors"),
        ("LOCK-DRIFT", "pytorch_model.bin"),
    ]
    assert doc["matched"] is False


def test_a_link_out_of_the_folder_fails(tmp_path: Path) -> None:
    model, lock = setup(tmp_path)
    outside = tmp_path / "outside.bin"
    outside.write_bytes((model / "model.safetensors").read_bytes())
    (model / "model.safetensors").unlink()
    (model / "model.safetensors").symlink_to(outside)
    code, doc = check(str(model), "--lock", str(lock))
    assert code == 1
    assert ("PATH-SYMLINK-ESCAPE", "model.safetensors") in drift(doc)


def test_the_entry_must_be_known(tmp_path: Path) -> None:
    model, _ = setup(tmp_path)
    lock = tmp_path / "two.lock"
    write_lock(lock, [locked({"a": b"1"}, "acme/a"), locked({"b": b"2"}, "acme/b")])
    result = CliRunner().invoke(cli, ["check", str(model), "--lock", str(lock)])
    assert result.exit_code == 2
    assert "--model" in result.stderr
    result = CliRunner().invoke(
        cli, ["check", str(model), "--lock", str(lock), "--model", "acme/c"]
    )
    assert result.exit_code == 2
    code, _doc = check(str(model), "--lock", str(lock), "--model", "acme/a")
    assert code == 1
    missing = CliRunner().invoke(cli, ["check", str(tmp_path / "nope"), "--lock", str(lock)])
    assert missing.exit_code == 2


def test_a_pulled_cache_snapshot_is_checked_against_its_lock(
    hub: HubEmulator, tmp_path: Path
) -> None:
    files = model_files()
    repo = hub.add_repo("acme/tiny", files)
    lock = tmp_path / "models.lock"
    runner = CliRunner()
    assert runner.invoke(cli, ["lock", "hf://acme/tiny", "-o", str(lock)]).exit_code == 0
    assert runner.invoke(cli, ["pull", "--lock", str(lock)]).exit_code == 0
    commit = repo.refs["main"]
    cache = tmp_path / "hf-home" / "hub" / "models--acme--tiny"
    snapshot = cache / "snapshots" / commit
    code, doc = check(str(snapshot), "--lock", str(lock))  # entry found from the cache path
    assert code == 0, doc
    assert doc["repo_id"] == "acme/tiny"
    blob = cache / "blobs" / hashlib.sha256(files["model.safetensors"]).hexdigest()
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    code, doc = check(str(snapshot), "--lock", str(lock))
    assert code == 1
    assert drift(doc) == [("LOCK-DRIFT", "model.safetensors")]
    other = cache / "snapshots" / ("d" * 40)
    os.rename(snapshot, other)
    code, doc = check(str(other), "--lock", str(lock))
    assert code == 1
    assert any("another commit" in f["message"] for f in doc["findings"])


def test_check_starts_light(tmp_path: Path) -> None:
    model, lock = setup(tmp_path)
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from verifier.cli import main
        sys.argv = ["verifier", "check", {str(model)!r}, "--lock", {str(lock)!r}]
        with contextlib.redirect_stdout(io.StringIO()):
            assert main() == 0
        """
    )
    loaded = _loaded_after(code)
    assert "verifier.check" in loaded  # it did check
    assert [m for m in _heavy(loaded) if not m.startswith("verifier.sources")] == []
