"""`verifier check PATH --lock FILE`: the load-time gate for a model already on disk."""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import model_files
from tests.test_imports import _heavy, _loaded_after
from verifier.check import check_with_service, exit_code, refusal
from verifier.cli import cli
from verifier.errors import ExitCode, ServiceError
from verifier.lockfile import LockedFile, LockedModel, write_lock
from verifier.model import CheckResult
from verifier.service.client import ServiceClient

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


def test_check_against_a_server_starts_light(tmp_path: Path) -> None:
    # Up to the first request (refused here: nothing listens) the --server path has loaded all
    # it needs; none of it is heavy.
    model, _lock = setup(tmp_path)
    code = textwrap.dedent(
        f"""
        import contextlib, io, os, sys
        from verifier.cli import main
        os.environ["VERIFIER_TOKEN"] = "t"
        sys.argv = ["verifier", "check", {str(model)!r}, "--server", "http://127.0.0.1:9",
                    "--model", "acme/tiny@{COMMIT}"]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main() == 3
        """
    )
    loaded = _loaded_after(code)
    assert {"verifier.check", "verifier.service.client", "verifier.report.json_format"} <= loaded
    assert [m for m in _heavy(loaded) if not m.startswith("verifier.sources")] == []


class RecordedService(ServiceClient):
    """The service's two answers, as given: the client's seam without HTTP (a fake, not a mock)."""

    def __init__(self, decision: dict[str, Any], scan: dict[str, Any]) -> None:
        super().__init__("http://127.0.0.1:9", "token")
        self.answer, self.scan = decision, scan

    def decision(self, subject: str, *, environment: str | None) -> dict[str, Any]:
        return self.answer

    def recorded_scan(self, subject: str) -> dict[str, Any]:
        return self.scan


SUBJECT = f"hf://acme/tiny@{COMMIT}"


def recorded(files: dict[str, bytes], **decision: Any) -> RecordedService:
    """A service that scanned `files` as acme/tiny@COMMIT (scan s1) and decides `decision`."""
    scan = {
        "scan_id": "s1",
        "status": "complete",
        "decision": "allow",
        "source": {
            "type": "huggingface",
            "repo_id": "acme/tiny",
            "revision_requested": "main",
            "commit": COMMIT,
            "endpoint": "https://huggingface.co",
        },
        "files": [
            {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "complete": True}
            for p, d in sorted(files.items())
        ],
    }
    answer = {
        "decision": "allow",
        "target": SUBJECT,
        "scan_id": "s1",
        "status": "complete",
        "policy": "default",
        "policy_digest": "sha256:0",
        "mode": "enforce",
        "environment": None,
        "reasons": [],
        "waivers": [],
        **decision,
    }
    return RecordedService(answer, scan)


def test_against_the_service_the_decision_and_the_bytes_both_count(tmp_path: Path) -> None:
    files = model_files()
    make_model(tmp_path / "m", files)

    def run(service: RecordedService) -> CheckResult:
        return check_with_service(tmp_path / "m", SUBJECT, client=service, environment=None)

    allowed = run(recorded(files))
    assert exit_code(allowed) is ExitCode.OK and refusal(allowed) is None
    spelled = f"hf://ACME/Tiny@{COMMIT}"  # the Hub's names are case-insensitive
    again = check_with_service(tmp_path / "m", spelled, client=recorded(files), environment=None)
    assert exit_code(again) is ExitCode.OK
    reason = {"rule_id": "r", "effect": "deny", "severity": "high", "message": "no"}
    denied = run(recorded(files, decision="deny", reasons=[reason]))
    assert exit_code(denied) is ExitCode.DENIED
    assert refusal(denied) == f"the service denies acme/tiny@{COMMIT}: no"
    audited = run(recorded(files, decision="deny", mode="audit", reasons=[reason]))
    assert exit_code(audited) is ExitCode.OK  # audit mode: reported, not enforced, as decide
    incomplete = run(recorded(files, decision="deny", status="incomplete"))
    assert exit_code(incomplete) is ExitCode.ERROR
    strange = run(recorded(files, decision="maybe"))  # not allow: read as deny
    assert exit_code(strange) is ExitCode.DENIED
    other = run(recorded({**files, "config.json": b"{}"}))
    assert exit_code(other) is ExitCode.DENIED
    assert [(f.code, f.file) for f in other.findings] == [("RECORD-DRIFT", "config.json")]


def test_answers_out_of_contract_fail_closed(tmp_path: Path) -> None:
    files = model_files()
    make_model(tmp_path / "m", files)
    cases = [
        (recorded(files, scan_id="s2"), "changed while it was read"),
        (recorded(files, decision="unknown", scan_id=None, status=None), "no decision"),
        (recorded(files, status="unheard-of"), "names no recorded scan"),
    ]
    moved = recorded(files)
    moved.scan["source"]["commit"] = "d" * 40
    cases.append((moved, "not a scan of the files"))
    empty = recorded({})
    cases.append((empty, "not a scan of the files"))
    partial = recorded(files)
    partial.scan["files"][0]["sha256"] = None
    cases.append((partial, "cannot vouch"))
    for service, says in cases:
        with pytest.raises(ServiceError, match=says):
            check_with_service(tmp_path / "m", SUBJECT, client=service, environment=None)
