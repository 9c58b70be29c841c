"""Policy files, the evidence document and the pure decision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.policy.helpers import (
    COMMIT,
    NOW,
    POLICIES,
    facts,
    file,
    finding,
    fired,
    hf,
    policy,
    run,
)
from verifier.errors import PolicyError
from verifier.model import Decision
from verifier.policy import default_policy_path, load_policy
from verifier.policy.schema import parse_policy


def test_default_policy_allows_safetensors_and_warns_on_clean_pickle() -> None:
    p = load_policy(default_policy_path())
    verdict = run(p, facts(file("a", "safetensors"), file("b", "pytorch-zip")))
    assert verdict.decision is Decision.ALLOW
    assert fired(verdict) == ["pickle-formats-warn"]


@pytest.mark.parametrize("severity", ["high", "critical"])
def test_default_policy_denies_high_and_critical(severity: str) -> None:
    p = load_policy(default_policy_path())
    verdict = run(
        p, facts(file("f", "pickle"), findings=[finding("PICKLE-DANGEROUS-GLOBAL", severity)])
    )
    assert verdict.decision is Decision.DENY
    assert "no-high-or-critical-findings" in fired(verdict)


def test_a_new_finding_code_is_decided_by_its_severity() -> None:
    p = load_policy(default_policy_path())
    verdict = run(p, facts(file("f", "gguf"), findings=[finding("GGUF-NEW-THING", "high")]))
    assert verdict.decision is Decision.DENY
    medium = run(p, facts(file("f", "gguf"), findings=[finding("GGUF-NEW-THING", "medium")]))
    assert medium.decision is Decision.ALLOW


def test_medium_finding_does_not_deny_by_default() -> None:
    p = load_policy(default_policy_path())
    verdict = run(p, facts(findings=[finding("PICKLE-TRAILING-DATA", "medium")]))
    assert verdict.decision is Decision.ALLOW


def test_incomplete_scan_is_never_allowed() -> None:
    permissive = policy(
        "name: p\nrules:\n  - id: anything\n    effect: allow\n    message: m\n"
        "    match: {scan_incomplete: false}\n"
    )
    verdict = run(permissive, facts(status="incomplete"))
    assert verdict.decision is Decision.DENY
    assert fired(verdict)[-1] == "(incomplete-scan)"


def test_strict_production_denies_pickle_formats() -> None:
    p = load_policy(POLICIES / "strict-production.yaml")
    verdict = run(p, facts(file("m.bin", "pytorch-legacy")))
    assert verdict.decision is Decision.DENY
    assert "no-pickle-formats" in fired(verdict)


def test_default_deny_needs_an_allow_rule() -> None:
    p = policy(
        "name: p\ndefault: deny\nrules:\n  - id: safetensors-only\n    effect: allow\n"
        "    message: m\n    match: {file_formats: [safetensors]}\n"
    )
    allowed = run(p, facts(file("a", "safetensors")))
    denied = run(p, facts(file("a", "gguf")))
    assert (allowed.decision, denied.decision) == (Decision.ALLOW, Decision.DENY)
    assert fired(denied) == ["(default)"]


def test_digest_is_stable_and_content_sensitive() -> None:
    text = (POLICIES / "default.yaml").read_text()
    a = parse_policy(text, source=Path("a"))
    b = parse_policy(text + "\n# a comment\n", source=Path("b"))
    c = parse_policy(text.replace("severity: high\n", "severity: critical\n", 1), source=Path("c"))
    assert a.digest() == b.digest() != c.digest()


def test_digest_covers_the_publisher_registry(tmp_path: Path) -> None:
    extra = tmp_path / "pub.yaml"
    extra.write_text(
        "version: 1\npublishers:\n  acme:\n    legal_entity: Acme Ltd\n    country: GB\n"
        "    source: https://acme.example/about\n    reviewed: 2026-01-01\n"
    )
    plain = load_policy(default_policy_path())
    extended = load_policy(default_policy_path(), publishers=extra)
    assert plain.digest() != extended.digest()
    assert extended.publishers.lookup("ACME") is not None


def test_same_evidence_same_verdict() -> None:
    p = load_policy(POLICIES / "strict-production.yaml")
    document = hf("Qwen/Qwen2.5-0.5B", findings=[finding("X-Y", "low")])
    assert run(p, document) == run(p, document)


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
            "p.yaml:3: rules.0.match.size_over: Extra inputs",
        ),
        ("name: p\nname: q\nrules: []\n", "duplicate key 'name' at line 2"),
        ("- just\n- a list\n", "mapping"),
        (
            "name: p\nrules:\n  - id: a\n    effect: deny\n    message: m\n    when: 'files.('\n",
            "p.yaml:6: rule 'a': when: CEL expression does not compile",
        ),
        (
            "name: p\nrules:\n  - id: a\n    effect: deny\n    message: m\n",
            "p.yaml:3: rules.0: Value error, a rule needs",
        ),
        (
            "name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {finding_codes: [X]}}"
            "\nwaivers:\n  - {id: w, rule: a, subject: 'sha256:" + "0" * 64 + "',"
            " approved_by: me, ticket: T-1, justification: j}\n",
            "p.yaml:5: waivers.0.expires: Field required",
        ),
        (
            "name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {finding_codes: [X]}}"
            "\nwaivers:\n  - {id: w, rule: a, subject: 'hf://org/model@main', expires: 2030-01-01,"
            " approved_by: me, ticket: T-1, justification: j}\n",
            "p.yaml:5: waivers.0.subject: Value error, 'hf://org/model@main' is not an exact",
        ),
        (
            "name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {finding_codes: [X]}}"
            "\nwaivers:\n  - {id: w, rule: nope, subject: 'sha256:" + "0" * 64 + "',"
            " expires: 2030-01-01, approved_by: me, ticket: T-1, justification: j}\n",
            "p.yaml:5: waivers.0.rule: no rule has the id 'nope'",
        ),
        (
            "name: p\nrules:\n"
            "  - {id: a, effect: deny, message: m, match: {jurisdiction_in: [cn]}}\n",
            "p.yaml:3: rules.0.match.jurisdiction_in: Value error, 'cn' is not an ISO",
        ),
        (
            "name: p\ndefault_environment: prod\nrules:\n"
            "  - {id: a, effect: deny, message: m, match: {finding_codes: [X]}}\n",
            "p.yaml:2: default_environment: expected one of the environments",
        ),
    ],
)
def test_invalid_policies_name_file_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace("[", r"\[")):
        policy(text)


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_unknown_environment_is_an_error() -> None:
    with pytest.raises(PolicyError, match="no environment 'staging'"):
        load_policy(default_policy_path(), env="staging")


def test_hf_subject_and_pinning_in_evidence() -> None:
    from verifier.policy import build_evidence

    p = load_policy(default_policy_path())
    from verifier.facts import parse_facts_document

    def evidence(document: dict[str, Any]) -> dict[str, Any]:
        return build_evidence(parse_facts_document(document), publishers=p.publishers, now=NOW)

    pinned = evidence(hf("Qwen/Qwen2.5"))
    moving = evidence(hf("Qwen/Qwen2.5", requested="main"))
    assert pinned["subject"]["uri"] == f"hf://Qwen/Qwen2.5@{COMMIT}"
    assert (pinned["model"]["pinned"], moving["model"]["pinned"]) == (True, False)
    assert pinned["publisher"]["known"] and pinned["publisher"]["country"] == "CN"
