"""`verifier decide`, `verifier policy check` and `verifier policy test` through click."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.policy.helpers import COMMIT, POLICIES
from verifier.cli import cli
from verifier.model import FileFormat, FileResult, ScanStatus
from verifier.pipeline import UNDECIDED, decide_report
from verifier.policy import default_policy_path, load_policy
from verifier.store import Store


def _run(*args: str, database_url: str | None = None) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url} if database_url else {}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _scan(target: Path, *extra: str, database_url: str | None = None) -> tuple[int, Any]:
    code, out, err = _run(
        "scan", str(target), "--format", "json", *extra, database_url=database_url
    )
    return code, json.loads(out) if out else err


def _history(database_url: str | None = None) -> list[Any]:
    code, out, _ = _run("history", "--format", "json", database_url=database_url)
    assert code == 0
    scans: list[Any] = json.loads(out)["scans"]
    return scans


def _pickle_model(tmp_path: Path) -> Path:
    folder = tmp_path / "m"
    folder.mkdir(parents=True)
    (folder / "data.pkl").write_bytes(b"\x80\x04]\x94.")
    return folder


def test_decide_again_with_another_policy_appends_a_decision(
    tmp_path: Path, database_url: str
) -> None:
    code, doc = _scan(_pickle_model(tmp_path), database_url=database_url)
    assert code == 0 and doc["decision"] == "allow"
    scan_id = doc["scan_id"]
    strict = str(POLICIES / "strict-production.yaml")
    code, out, _ = _run(
        "decide", scan_id[:8], "--policy", strict, "--format", "json", database_url=database_url
    )
    decided = json.loads(out)
    assert code == 1 and decided["decision"] == "deny" and decided["recorded"]
    assert decided["policy"]["environment"] == "production"
    assert "no-pickle-formats" in [r["rule_id"] for r in decided["policy"]["reasons"]]
    # The new decision is the scan's current one.
    assert _history(database_url)[0]["decision"] == "deny"
    code, out, _ = _run("show", scan_id, "--format", "json", database_url=database_url)
    assert json.loads(out)["policy"]["name"] == "strict-production"


def test_audit_environment_records_and_exits_0(tmp_path: Path) -> None:
    _, doc = _scan(_pickle_model(tmp_path))
    strict = str(POLICIES / "strict-production.yaml")
    code, out, _ = _run("decide", doc["scan_id"], "--policy", strict, "--env", "staging")
    assert code == 0
    assert "DENY" in out and "environment staging" in out and "no-pickle-formats" in out
    assert _history()[0]["decision"] == "deny"


def test_dry_run_records_nothing(tmp_path: Path) -> None:
    dry = tmp_path / "dry.yaml"
    dry.write_text(
        (POLICIES / "strict-production.yaml").read_text().replace("mode: enforce", "mode: dry-run")
    )
    _, doc = _scan(_pickle_model(tmp_path))
    code, out, _ = _run("decide", doc["scan_id"], "--policy", str(dry), "--format", "json")
    assert code == 0
    assert json.loads(out)["recorded"] is False and json.loads(out)["decision"] == "deny"
    assert _history()[0]["decision"] == "allow"
    _scan(_pickle_model(tmp_path / "x"), "--policy", str(dry))
    assert len(_history()) == 1


def test_decide_by_hub_subject_uses_recorded_facts(database_url: str) -> None:
    policy = load_policy(default_policy_path())
    report = replace(
        UNDECIDED_REPORT,
        source={
            "type": "huggingface",
            "repo_id": "Qwen/Qwen2.5-0.5B",
            "revision_requested": "main",
            "commit": COMMIT,
        },
    )
    with Store.open(database_url) as store:
        store.record_scan(decide_report(report, policy))
    origin = str(POLICIES / "examples" / "origin.yaml")
    subject = f"hf://Qwen/Qwen2.5-0.5B@{COMMIT}"
    code, out, _ = _run(
        "decide", subject, "--policy", origin, "--format", "json", database_url=database_url
    )
    decided = json.loads(out)
    assert code == 1 and decided["scan_id"] == report.scan_id and decided["subject"] == subject
    assert [r["rule_id"] for r in decided["policy"]["reasons"]] == ["jurisdiction-allowed"]
    code, _, err = _run("decide", "hf://Qwen/Qwen2.5-0.5B@main", database_url=database_url)
    assert code == 2 and "exact commit" in err
    code, _, err = _run("decide", f"hf://Qwen/other@{COMMIT}", database_url=database_url)
    assert code == 2 and "no recorded scan" in err


UNDECIDED_REPORT = __import__("verifier.model", fromlist=["ScanReport"]).ScanReport(
    scan_id="f" * 32,
    target="hf://Qwen/Qwen2.5-0.5B",
    started_at="2026-11-28T00:00:00+00:00",
    finished_at="2026-11-28T00:00:01+00:00",
    tool_version="test",
    status=ScanStatus.COMPLETE,
    files=(FileResult("model.safetensors", 8, "0" * 64, None, FileFormat.SAFETENSORS),),
    findings=(),
    verdict=UNDECIDED,
)


def test_cel_that_raises_during_a_scan_records_nothing(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n"
        "    when: size(files) > 0 && files[0].size / (files[0].size - files[0].size) > 0\n"
    )
    code, err = _scan(tiny_model, "--policy", str(bad))
    assert code == 2 and f"{bad}:6: rule 'r': when:" in err
    assert _history() == []


def test_unknown_environment_is_a_usage_error(tiny_model: Path) -> None:
    code, _, err = _run("scan", str(tiny_model), "--env", "nowhere")
    assert code == 2 and "no environment 'nowhere'" in err
    assert _history() == []


def test_policy_check(tmp_path: Path) -> None:
    code, out, _ = _run("policy", "check", str(POLICIES / "strict-production.yaml"))
    assert code == 0 and out.startswith("ok: ") and "environments: staging, production" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n    match: {x: 1}\n"
    )
    code, out, err = _run("policy", "check", str(bad))
    assert code == 2 and out == "" and f"{bad}:6: rules.0.match.x: Extra inputs" in err


def test_policy_test_command(tmp_path: Path) -> None:
    code, out, _ = _run("policy", "test", str(POLICIES))
    assert code == 0 and out.rstrip().endswith(" passed, 0 failed")
    (tmp_path / "p.yaml").write_text((POLICIES / "default.yaml").read_text())
    (tmp_path / "p_test.yaml").write_text(
        "policy: p.yaml\ncases:\n  - name: wrong\n    facts: {status: complete}\n"
        "    expect: {decision: deny}\n"
    )
    code, out, _ = _run("policy", "test", str(tmp_path))
    assert code == 1 and "FAIL" in out and "0 passed, 1 failed" in out
    code, _, err = _run("policy", "test", str(tmp_path / "p.yaml"))
    assert code == 2 and "p.yaml" in err


def test_local_scan_reads_the_card_licence_for_procurement(tiny_model: Path) -> None:
    eu = str(POLICIES / "eu-procurement.yaml")
    code, doc = _scan(tiny_model, "--policy", eu)
    fired = {r["rule_id"] for r in doc["policy"]["reasons"]}
    # The tiny model's card declares apache-2.0 but no base model, and a local folder has no
    # publisher on record.
    assert code == 1
    assert fired == {"publishers-on-record", "lineage-declared"}


WAIVERS = """version: 1
waivers:
  - id: reviewed-pickle
    rule: no-pickle-formats
    subject: sha256:{sha}
    expires: 2099-12-31
    approved_by: security@example.com
    ticket: SEC-9
    justification: Reviewed by hand.
"""


def test_waivers_file_sets_a_rule_aside_and_counts_in_the_digest(tmp_path: Path) -> None:
    model = _pickle_model(tmp_path)
    sha = hashlib.sha256((model / "data.pkl").read_bytes()).hexdigest()
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS.format(sha=sha))
    strict = str(POLICIES / "strict-production.yaml")
    _, plain = _scan(model, "--policy", strict)
    _, waived = _scan(model, "--policy", strict, "--waivers", str(waivers))
    reasons = {r["rule_id"]: r for r in waived["policy"]["reasons"]}
    assert reasons["no-pickle-formats"]["waived_by"] == "reviewed-pickle"
    assert waived["policy"]["waivers"][0]["status"] == "applied"
    assert waived["policy"]["digest"] != plain["policy"]["digest"]
    code, out, err = _run("policy", "check", strict, "--waivers", str(waivers))
    assert code == 0 and "1 waivers" in out, err


def test_waivers_file_errors_name_file_and_line(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS.format(sha="0" * 64).replace("no-pickle-formats", "nope"))
    code, _, err = _run(
        "policy", "check", str(POLICIES / "default.yaml"), "--waivers", str(waivers)
    )
    assert code == 2 and f"{waivers}:4: waivers.0.rule: policy 'default' has no rule" in err
    waivers.write_text(WAIVERS.format(sha="0" * 64).replace("sha256:" + "0" * 64, "hf://a/b@main"))
    code, _, err = _run("scan", str(tmp_path), "--waivers", str(waivers))
    assert code == 2 and f"{waivers}:5: waivers.0.subject" in err
