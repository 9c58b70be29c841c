"""Policy files and the pure decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.errors import PolicyError
from verifier.model import Decision, FileFormat, FileResult, Finding, ScanStatus, Severity
from verifier.policy import decide, default_policy_path, load_policy
from verifier.policy.schema import parse_policy

POLICIES = Path(__file__).resolve().parents[2] / "policies"


def _file(fmt: FileFormat, *findings: Finding) -> FileResult:
    return FileResult("f", 1, "0" * 64, None, fmt, tuple(findings))


def _finding(code: str, severity: Severity) -> Finding:
    return Finding(code, severity, "m", file="f")


def test_default_policy_allows_safetensors_and_warns_on_clean_pickle() -> None:
    policy = load_policy(default_policy_path())
    files = [_file(FileFormat.SAFETENSORS), _file(FileFormat.PYTORCH_ZIP)]
    verdict = decide(policy, files=files, findings=[], status=ScanStatus.COMPLETE)
    assert verdict.decision is Decision.ALLOW
    assert [r.rule_id for r in verdict.reasons] == ["pickle-formats-warn"]


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_default_policy_denies_high_and_critical(severity: Severity) -> None:
    policy = load_policy(default_policy_path())
    finding = _finding("PICKLE-DANGEROUS-GLOBAL", severity)
    verdict = decide(
        policy,
        files=[_file(FileFormat.PICKLE, finding)],
        findings=[finding],
        status=ScanStatus.COMPLETE,
    )
    assert verdict.decision is Decision.DENY
    assert "no-high-or-critical-findings" in [r.rule_id for r in verdict.reasons]


def test_medium_finding_does_not_deny_by_default() -> None:
    policy = load_policy(default_policy_path())
    finding = _finding("PICKLE-TRAILING-DATA", Severity.MEDIUM)
    verdict = decide(policy, files=[], findings=[finding], status=ScanStatus.COMPLETE)
    assert verdict.decision is Decision.ALLOW


def test_incomplete_scan_is_never_allowed() -> None:
    permissive = parse_policy(
        "name: p\nrules:\n  - id: anything\n    effect: allow\n    message: m\n"
        "    match: {scan_incomplete: false}\n",
        source=Path("p.yaml"),
    )
    verdict = decide(permissive, files=[], findings=[], status=ScanStatus.INCOMPLETE)
    assert verdict.decision is Decision.DENY


def test_strict_production_denies_pickle_formats() -> None:
    policy = load_policy(POLICIES / "strict-production.yaml")
    verdict = decide(
        policy, files=[_file(FileFormat.PYTORCH_LEGACY)], findings=[], status=ScanStatus.COMPLETE
    )
    assert verdict.decision is Decision.DENY


def test_default_deny_needs_an_allow_rule() -> None:
    policy = parse_policy(
        "name: p\ndefault: deny\nrules:\n  - id: safetensors-only\n    effect: allow\n"
        "    message: m\n    match: {file_formats: [safetensors]}\n",
        source=Path("p.yaml"),
    )
    allowed = decide(
        policy, files=[_file(FileFormat.SAFETENSORS)], findings=[], status=ScanStatus.COMPLETE
    )
    denied = decide(policy, files=[_file(FileFormat.GGUF)], findings=[], status=ScanStatus.COMPLETE)
    assert (allowed.decision, denied.decision) == (Decision.ALLOW, Decision.DENY)


def test_digest_is_stable_and_content_sensitive() -> None:
    text = (POLICIES / "default.yaml").read_text()
    a = parse_policy(text, source=Path("a"))
    b = parse_policy(text, source=Path("b"))
    c = parse_policy(text.replace("severity: high\n", "severity: critical\n", 1), source=Path("c"))
    assert a.digest() == b.digest() != c.digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "p.yaml:2: invalid YAML"),
        ("name: p\nrules: []\n", "p.yaml:2: rules: "),
        ("name: p\nbogus: 1\nrules: []\n", "p.yaml:2: bogus: Extra inputs"),
        (
            "name: p\nrules:\n  - id: a\n    effect: explode\n    message: m\n    match: {}\n",
            "p.yaml:4: rules.0.effect",
        ),
        (
            "name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {size_over: 1}}\n",
            "size_over",
        ),
        ("name: p\nname: q\nrules: []\n", "duplicate key 'name' at line 2"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_invalid_policies_name_file_and_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, source=Path("p.yaml"))


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
