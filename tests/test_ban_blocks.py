"""A ban blocks whatever the policy's mode: `audit` reports other denies and admits them, but
a banned model exits 1 and is not admitted (docs/policy.md, "Bans")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.service.test_api import review
from tests.service.test_upkeep import serving
from tests.sources.test_huggingface import model_files
from verifier.check import exit_code, refusal
from verifier.cli import cli
from verifier.errors import ExitCode
from verifier.model import (
    BAN_RULE_ID,
    CheckResult,
    Decision,
    RuleOutcome,
    ScanStatus,
    ServiceDecision,
    Severity,
    Verdict,
)
from verifier.service.model import Role

AUDIT = """\
version: 1
name: trial
mode: audit
rules:
  - id: no-acme
    effect: deny
    severity: high
    message: acme models are on trial
    match:
      model_in: ["acme/*"]
"""


def _verdict(mode: str, decision: Decision, *, ban: bool = False) -> Verdict:
    reasons = (
        (RuleOutcome(BAN_RULE_ID, "deny", Severity.CRITICAL, "banned publisher acme: x"),)
        if ban
        else ()
    )
    return Verdict(decision, "p", "d", mode, reasons=reasons)


def test_what_blocks() -> None:
    assert _verdict("enforce", Decision.DENY).blocks
    assert not _verdict("enforce", Decision.ALLOW).blocks
    assert not _verdict("audit", Decision.DENY).blocks
    assert not _verdict("dry-run", Decision.DENY).blocks
    assert _verdict("audit", Decision.DENY, ban=True).blocks
    assert _verdict("dry-run", Decision.DENY, ban=True).blocks


def _run(*args: str, url: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args, "--format", "json", "--database-url", url])
    assert result.stdout.strip(), result.output
    return result.exit_code, json.loads(result.stdout)


def test_the_command_line_exits_1_for_a_ban_under_an_audit_policy(
    hub: HubEmulator, sqlite_url: str, tmp_path: Path
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    policy = tmp_path / "trial.yaml"
    policy.write_text(AUDIT)
    subject = f"hf://acme/tiny@{commit}"
    code, scanned = _run("scan", subject, "--policy", str(policy), url=sqlite_url)
    assert (code, scanned["decision"]) == (0, "deny")  # audit: reported, not blocking
    code, _ = _run(
        "ban", "publisher", "acme", "--reason", "front", "--policy", str(policy), url=sqlite_url
    )
    assert code == 0
    code, decided = _run("decide", subject, "--policy", str(policy), url=sqlite_url)
    assert (code, decided["decision"]) == (1, "deny")
    assert decided["policy"]["reasons"][0]["rule_id"] == BAN_RULE_ID


def test_the_gate_does_not_admit_a_banned_model_under_an_audit_policy(
    database_url: str, hub: HubEmulator, tmp_path: Path
) -> None:
    commit = hub.add_repo("acme/tiny", model_files()).refs["main"]
    policy = tmp_path / "trial.yaml"
    policy.write_text(AUDIT)
    subject = f"hf://acme/tiny@{commit}"
    with serving(database_url, policy) as api:
        api.scan(subject)

        def admitted() -> dict[str, Any]:
            response = api.call("POST", "/api/v1/admission", role=Role.VIEWER, json=review(subject))
            assert response.status_code == 200, response.text
            found: dict[str, Any] = response.json()["response"]
            return found

        trial = admitted()
        assert trial["allowed"] is True and "audit mode" in " ".join(trial["warnings"])
        made = api.call(
            "POST",
            "/api/v1/bans",
            role=Role.APPROVER,
            json={"kind": "model", "value": "acme/tiny", "reason": "front"},
        )
        assert made.status_code == 201, made.text
        banned = admitted()
        assert banned["allowed"] is False
        assert "banned model acme/tiny: front" in banned["status"]["message"]


def test_check_against_the_service_fails_for_a_ban_under_an_audit_policy() -> None:
    def checked(verdict: Verdict) -> CheckResult:
        return CheckResult(
            path="/models/tiny",
            repo_id="acme/tiny",
            commit="a" * 40,
            files=(),
            expected=0,
            findings=(),
            decision=ServiceDecision(
                server="http://127.0.0.1:8080",
                subject=f"hf://acme/tiny@{'a' * 40}",
                scan_id="s",
                status=ScanStatus.COMPLETE,
                verdict=verdict,
            ),
        )

    assert exit_code(checked(_verdict("audit", Decision.DENY))) is ExitCode.OK
    banned = checked(_verdict("audit", Decision.DENY, ban=True))
    assert exit_code(banned) is ExitCode.DENIED
    assert refusal(banned) == f"the service denies acme/tiny@{'a' * 40}: banned publisher acme: x"
