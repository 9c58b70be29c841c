"""Re-deciding recorded models from their facts (`verifier redecide`, `verifier changes`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.test_schemas import validate_output
from verifier.cli import cli
from verifier.model import Decision, RuleOutcome, Severity, Verdict, WaiverOutcome
from verifier.redecide import Cause, infer_cause

ALLOW_ALL = """\
version: 1
name: {name}
default: {default}
rules:
  - id: no-critical
    effect: deny
    severity: critical
    message: critical findings block the model
    match:
      finding_severity_at_least: critical
"""


def _policy(folder: Path, name: str, default: str) -> str:
    path = folder / f"{name}.yaml"
    path.write_text(ALLOW_ALL.format(name=name, default=default))
    return str(path)


def _run(*args: str, url: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args, "--format", "json", "--database-url", url])
    assert result.stdout.strip(), result.output
    document = json.loads(result.stdout)
    validate_output(args, document)
    return result.exit_code, document


def test_a_policy_change_is_recorded_with_its_cause(
    tiny_model: Path, tmp_path: Path, sqlite_url: str
) -> None:
    lenient = _policy(tmp_path, "lenient", "allow")
    strict = _policy(tmp_path, "strict", "deny")
    code, scanned = _run("scan", str(tiny_model), "--policy", lenient, url=sqlite_url)
    assert code == 0 and scanned["decision"] == "allow"

    code, done = _run("redecide", "--all", "--policy", strict, url=sqlite_url)
    assert code == 0
    [model] = done["models"]
    assert model["subject"] == scanned["target"]
    assert (model["previous"], model["decision"], model["cause"], model["changed"]) == (
        "allow",
        "deny",
        "policy",
        True,
    )
    # Again with the same policy: recorded, but nothing changed.
    code, again = _run("redecide", scanned["target"], "--policy", strict, url=sqlite_url)
    assert [m["changed"] for m in again["models"]] == [False]

    code, listed = _run("changes", url=sqlite_url)
    assert code == 0
    [change] = listed["changes"]
    assert (change["previous"], change["decision"], change["cause"], change["policy"]) == (
        "allow",
        "deny",
        "policy",
        "strict",
    )
    assert change["actor"].startswith("cli")
    code, shown = _run("show", scanned["scan_id"], url=sqlite_url)
    assert shown["decision"] == "deny"


def test_redecide_needs_models_it_knows(tmp_path: Path, sqlite_url: str) -> None:
    result = CliRunner().invoke(cli, ["redecide", "--database-url", sqlite_url])
    assert result.exit_code == 2 and "--all" in result.output
    result = CliRunner().invoke(
        cli, ["redecide", "hf://a/b@" + "c" * 40, "--database-url", sqlite_url]
    )
    assert result.exit_code == 2 and "no recorded scan of hf://a/b@" in result.output


def _verdict(
    digest: str = "d1",
    *,
    banned: tuple[str, ...] = (),
    waiver_status: str | None = None,
    decision: Decision = Decision.ALLOW,
) -> Verdict:
    reasons = tuple(
        RuleOutcome("(ban)", "deny", Severity.CRITICAL, "banned", evidence=(f"ban {b} by x",))
        for b in banned
    )
    waivers = (
        (WaiverOutcome("w1", "r", "hf://a/b@c", waiver_status, "2026-01-01", "me", "T-1"),)
        if waiver_status
        else ()
    )
    return Verdict(decision, "p", digest, "enforce", reasons=reasons, waivers=waivers)


def test_causes_are_inferred_from_the_two_decisions() -> None:
    assert infer_cause(None, _verdict()) is Cause.POLICY
    assert infer_cause(_verdict("d1"), _verdict("d2")) is Cause.POLICY
    assert infer_cause(_verdict(), _verdict(banned=("1",))) is Cause.BAN
    assert infer_cause(_verdict(banned=("1",)), _verdict()) is Cause.BAN_LIFTED
    assert (
        infer_cause(_verdict(waiver_status="applied"), _verdict(waiver_status="expired"))
        is Cause.WAIVER
    )
    assert infer_cause(_verdict(), _verdict(decision=Decision.DENY)) is Cause.REQUESTED
