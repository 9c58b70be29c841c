"""`verifier` end to end through click: scan, record, decide, history, show, and bad input."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests import samples
from verifier import pipeline
from verifier.cli import cli
from verifier.errors import ScanAbortedError
from verifier.model import Decision, ScanReport, ScanStatus
from verifier.policy import default_policy_path, load_policy
from verifier.sources import local
from verifier.sources.local import LocalSource
from verifier.store import Store


def _run(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _scan_json(target: Path, *extra: str, database_url: str | None = None) -> tuple[int, Any]:
    code, out, _ = _run("scan", str(target), "--format", "json", *extra, database_url=database_url)
    return code, json.loads(out)


def test_tiny_model_is_allowed_and_recorded(tiny_model: Path, database_url: str) -> None:
    code, doc = _scan_json(tiny_model, database_url=database_url)
    assert code == 0, doc
    assert doc["decision"] == "allow"
    assert doc["status"] == "complete"
    by_path = {f["path"]: f for f in doc["files"]}
    assert set(by_path) == {
        ".gitattributes",
        "LICENSE",
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    weights = tiny_model / "model.safetensors"
    assert (
        by_path["model.safetensors"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    )
    assert by_path["model.safetensors"]["format"] == "safetensors"
    assert by_path["config.json"]["format"] == "json"
    assert doc["policy"]["name"] == "default" and len(doc["policy"]["digest"]) == 64

    code, out, _ = _run("show", doc["scan_id"][:8], "--format", "json", database_url=database_url)
    assert code == 0
    assert json.loads(out) == doc
    code, out, _ = _run("history", "--format", "json", database_url=database_url)
    assert [s["scan_id"] for s in json.loads(out)["scans"]] == [doc["scan_id"]]


def test_json_contract_fields(tiny_model: Path) -> None:
    _, doc = _scan_json(tiny_model)
    assert {"scan_id", "target", "decision", "files", "findings", "policy"} <= set(doc)
    assert {"path", "size", "sha256", "git_sha1", "format", "findings"} <= set(doc["files"][0])
    assert {"name", "digest", "reasons"} <= set(doc["policy"])


def test_malicious_pickles_are_denied(tmp_path: Path, marker_dir: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(samples.safetensors_bytes({}, b""))
    (model / "pytorch_model.bin").write_bytes(
        samples.torch_zip_with_pickle(samples.builtins_eval(marker_dir))
    )
    (model / "extra.pkl").write_bytes(samples.os_system(marker_dir))
    code, doc = _scan_json(model)
    assert code == 1
    assert doc["decision"] == "deny"
    evidence = {(f["file"], f["evidence"]) for f in doc["findings"] if f["severity"] == "critical"}
    assert evidence == {("pytorch_model.bin", "builtins.eval"), ("extra.pkl", "os.system")}


def test_renamed_pickle_is_found_by_content(tmp_path: Path, marker_dir: Path) -> None:
    (tmp_path / "weights.safetensors.txt").write_bytes(samples.os_system(marker_dir))
    code, doc = _scan_json(tmp_path)
    assert code == 1
    assert doc["files"][0]["format"] == "pickle"


def test_table_output_names_the_decision(tiny_model: Path) -> None:
    code, out, _ = _run("scan", str(tiny_model))
    assert code == 0
    assert "decision: ALLOW" in out and "model.safetensors" in out


def test_strict_policy_denies_a_clean_pickle(tmp_path: Path) -> None:
    (tmp_path / "data.pkl").write_bytes(b"\x80\x04]\x94.")
    policies = Path(__file__).resolve().parents[1] / "policies"
    assert _scan_json(tmp_path)[0] == 0
    code, doc = _scan_json(tmp_path, "--policy", str(policies / "strict-production.yaml"))
    assert code == 1
    assert "no-pickle-formats" in [r["rule_id"] for r in doc["policy"]["reasons"]]


# Bad input: one clear line, the right exit code, and a consistent database.


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = _run("scan", str(tmp_path / "missing"))
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [f"error: target not found: {tmp_path / 'missing'}"]


def test_empty_folder_is_denied(tmp_path: Path) -> None:
    code, doc = _scan_json(tmp_path)
    assert code == 1
    assert [f["code"] for f in doc["findings"]] == ["TARGET-EMPTY"]


def test_zero_byte_file_is_hashed(tmp_path: Path) -> None:
    (tmp_path / "empty.bin").write_bytes(b"")
    code, doc = _scan_json(tmp_path)
    assert code == 0
    assert doc["files"][0]["format"] == "empty"
    assert doc["files"][0]["sha256"] == hashlib.sha256(b"").hexdigest()


def test_huge_safetensors_header_is_denied(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(samples.safetensors_huge_length())
    code, doc = _scan_json(tmp_path)
    assert code == 1
    assert doc["decision"] == "deny"
    assert any(f["severity"] in ("high", "critical") for f in doc["findings"])


def test_truncated_pickle_is_denied(tmp_path: Path, marker_dir: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(samples.truncated(pickle_list()))
    code, doc = _scan_json(tmp_path)
    assert code == 1
    assert "PICKLE-MALFORMED" in {f["code"] for f in doc["findings"]}


def pickle_list() -> bytes:
    import pickle

    return pickle.dumps(list(range(100)), protocol=2)


def _scan_local(source: LocalSource, recorder: Store | None = None) -> ScanReport:
    """Scan through the Source seam with a source the test built (a fake opener or walk)."""
    return pipeline.scan_source(
        source, policy=load_policy(default_policy_path()), recorder=recorder
    )


def test_unreadable_file_makes_the_scan_incomplete(tiny_model: Path) -> None:
    def deny_config(location: str) -> tuple[int, int]:
        if location.endswith("/config.json"):
            raise PermissionError(13, "Permission denied")
        return local.open_regular(location)

    report = _scan_local(LocalSource(str(tiny_model), opener=deny_config))
    assert report.status is ScanStatus.INCOMPLETE and report.verdict.decision is Decision.DENY
    unreadable = [f for f in report.findings if f.code == "FILE-UNREADABLE"]
    assert [f.file for f in unreadable] == ["config.json"]
    assert unreadable[0].message == "file could not be read: Permission denied"


def test_file_vanishing_after_listing(tiny_model: Path) -> None:
    def walk_then_delete(target: str) -> local.LocalTree:
        tree = local.walk(target)
        (tiny_model / "tokenizer.json").unlink()
        return tree

    report = _scan_local(LocalSource(str(tiny_model), walker=walk_then_delete))
    assert report.status is ScanStatus.INCOMPLETE
    assert [f.file for f in report.findings if f.code == "FILE-UNREADABLE"] == ["tokenizer.json"]


def test_file_shrinking_mid_read(tiny_model: Path) -> None:
    def open_then_truncate(location: str) -> tuple[int, int]:
        fd, size = local.open_regular(location)
        if location.endswith("model.safetensors"):
            os.truncate(location, size // 2)
        return fd, size

    report = _scan_local(LocalSource(str(tiny_model), opener=open_then_truncate))
    assert report.status is ScanStatus.INCOMPLETE
    assert "FILE-CHANGED-DURING-SCAN" in {f.code for f in report.findings}


def test_unreachable_database_is_one_line_exit_3(tiny_model: Path) -> None:
    code, out, err = _run(
        "scan", str(tiny_model), database_url="postgresql+psycopg://nobody:pw@127.0.0.1:1/none"
    )
    assert code == 3
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pw" not in lines[0]


def test_aborted_scan_is_recorded_as_failed(tiny_model: Path, sqlite_url: str) -> None:
    def explode(location: str) -> tuple[int, int]:
        raise RuntimeError("disk on fire")

    with Store.open(sqlite_url) as store, pytest.raises(ScanAbortedError, match="disk on fire"):
        _scan_local(LocalSource(str(tiny_model), opener=explode), store)
    _, out, _ = _run("history", "--format", "json", database_url=sqlite_url)
    [scan] = json.loads(out)["scans"]
    assert (scan["status"], scan["decision"]) == ("failed", "deny")


def test_show_unknown_scan_is_a_usage_error() -> None:
    code, _, err = _run("show", "deadbeefdeadbeef")
    assert code == 2
    assert err.startswith("error: ")


def test_bad_policy_is_a_usage_error_and_records_nothing(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules: [\n")
    code, out, err = _run("scan", str(tiny_model), "--policy", str(bad))
    assert code == 2 and out == ""
    assert str(bad) in err
    code, out, _ = _run("history", "--format", "json")
    assert json.loads(out)["scans"] == []


def test_db_upgrade_and_current(sqlite_url: str) -> None:
    code, _, err = _run("db", "upgrade", database_url=sqlite_url)
    assert code == 0 and "revision" in err
    code, out, _ = _run("db", "current", database_url=sqlite_url)
    assert code == 0 and out.strip() != "(empty)"
