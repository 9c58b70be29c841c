"""Matchers, CEL, lineage scopes, waivers, environments and modes, through the pure decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.policy.helpers import COMMIT, NOW, facts, file, finding, fired, hf, policy, run
from verifier.errors import PolicyError
from verifier.model import Decision

SHA = "c" * 64


def _one(match: str, *, lineage: str | None = None, effect: str = "deny") -> str:
    scope = f"    lineage: {lineage}\n" if lineage else ""
    return (
        f"name: p\nrules:\n  - id: r\n    effect: {effect}\n    message: m\n{scope}"
        f"    match: {match}\n"
    )


def _lineage(*repos: str, commit: str | None = "b" * 40) -> list[dict[str, Any]]:
    return [{"repo_id": r, "relation": "finetune", "commit": commit, "depth": 1} for r in repos]


@pytest.mark.parametrize(
    ("match", "document", "fires"),
    [
        ("{publisher_in: [qwen]}", hf("Qwen/Qwen2.5"), True),
        (
            "{finding_codes: [X], finding_paths: ['assets/*']}",
            facts(findings=[finding("X", "high", "assets/a/b.wav")]),
            True,
        ),
        (
            "{finding_codes: [X], finding_paths: ['assets/*']}",
            facts(findings=[finding("X", "high", "Assets/b.wav")]),
            False,
        ),
        (
            "{finding_paths_not_in: ['assets/*']}",
            facts(findings=[finding("X", "high", "assets/b.wav")]),
            False,
        ),
        ("{finding_paths_not_in: ['a/*']}", facts(findings=[finding("X", "high", None)]), True),
        ("{finding_paths: ['*']}", facts(findings=[finding("X", "high", None)]), False),
        (
            "{finding_severity_at_least: high, finding_codes_not_in: [X]}",
            facts(findings=[finding("X", "high"), finding("Y", "low")]),
            False,
        ),
        (
            "{finding_severity_at_least: high, finding_codes_not_in: [X]}",
            facts(findings=[finding("X", "high"), finding("Y", "high")]),
            True,
        ),
        ("{publisher_in: [google]}", hf("Qwen/Qwen2.5"), False),
        ("{publisher_not_in: [google]}", facts(), True),  # unknown is never on a list
        ("{publisher_known: false}", hf("nobody/x"), True),
        ("{publisher_known: false}", hf("mistralai/x"), False),
        ("{jurisdiction_in: [FR]}", hf("mistralai/x"), True),
        ("{jurisdiction_not_in: [FR]}", hf("nobody/x"), True),
        ("{jurisdiction_not_in: [FR, US]}", hf("google/x"), False),
        ("{model_in: ['meta-llama/*']}", hf("meta-llama/Llama-3.1-8B"), True),
        ("{model_not_in: ['meta-llama/*']}", hf("meta-llama/Llama-3.1-8B"), False),
        ("{licence_in: [mit]}", hf("a/b", provenance={"license": "MIT"}), True),
        ("{licence_not_in: [mit]}", hf("a/b"), True),
        ("{licence_known: false}", hf("a/b"), True),
        ("{revision_pinned: true}", hf("a/b"), True),
        ("{revision_pinned: true}", hf("a/b", requested="main"), False),
        ("{remote_code: true}", facts(file("modeling_x.py", "text")), True),
        ("{remote_code: true}", facts(findings=[finding("REMOTE-CODE-AUTO-MAP", "medium")]), True),
        ("{remote_code: false}", facts(file("m.safetensors", "safetensors")), True),
        ("{signature_verified: false}", facts(), True),
        ("{signature_verified: true}", facts(signature={"status": "verified"}), True),
        ("{signature_verified: true}", facts(signature={"status": "invalid"}), False),
        (
            "{signer_in: ['*@acme.example']}",
            facts(signature={"status": "verified", "signer": "ci@acme.example"}),
            True,
        ),
        (
            "{signer_in: ['*@acme.example']}",
            facts(signature={"status": "invalid", "signer": "ci@acme.example"}),
            False,
        ),
        ("{signer_not_in: ['*@acme.example']}", facts(), True),
        ("{model_age_days_under: 30}", hf("a/b", provenance={"created_at": "2026-11-20"}), True),
        ("{model_age_days_over: 30}", hf("a/b", provenance={"created_at": "2026-11-20"}), False),
        ("{model_age_days_under: 30}", hf("a/b"), False),
        ("{model_age_known: false}", hf("a/b"), True),
        (
            "{hub_scan_status_in: [issues]}",
            hf("a/b", provenance={"hub_security_status": '{"filesWithIssues": ["a.bin"]}'}),
            True,
        ),
        ("{hub_scan_status_in: [unknown]}", hf("a/b"), True),
        ("{model_card: true}", facts(file("README.md", "text")), True),
        ("{model_card: false}", facts(file("README.md", "text")), False),
        ("{lineage_declared: false}", hf("a/b"), True),
        ("{lineage_declared: true}", hf("a/b", lineage=_lineage("c/d")), True),
        ("{lineage_identified: false}", hf("a/b", lineage=_lineage("c/d", commit=None)), True),
        ("{lineage_identified: false}", hf("a/b", lineage=_lineage("c/d")), False),
        ("{file_formats_not_in: [safetensors, json]}", facts(file("a", "gguf")), True),
        ("{file_formats_not_in: [safetensors, json]}", facts(file("a", "json")), False),
        (
            "{finding_codes: [X-Y], finding_severity_at_least: high}",
            facts(findings=[finding("X-Y", "low")]),
            False,
        ),
    ],
)
def test_each_matcher(match: str, document: dict[str, Any], fires: bool) -> None:
    verdict = run(policy(_one(match)), document)
    assert (fired(verdict) == ["r"]) is fires


def test_lineage_any_reaches_ancestors_and_all_needs_every_one() -> None:
    derived = hf("nvidia/tune", lineage=_lineage("Qwen/Qwen2.5-7B"))
    any_cn = policy(_one("{jurisdiction_in: [CN]}", lineage="any"))
    own_cn = policy(_one("{jurisdiction_in: [CN]}"))
    assert fired(run(any_cn, derived)) == ["r"]
    assert fired(run(own_cn, derived)) == []
    reason = run(any_cn, derived).reasons[0]
    assert reason.evidence == (
        "ancestor Qwen/Qwen2.5-7B (finetune, depth 1): publisher country CN",
    )
    allow_all = policy(_one("{publisher_in: [nvidia, meta-llama]}", lineage="all", effect="allow"))
    ok = hf("nvidia/tune", lineage=_lineage("meta-llama/Llama-3.1-8B"))
    assert fired(run(allow_all, ok)) == ["r"]
    assert fired(run(allow_all, derived)) == []


def test_lineage_needs_a_model_matcher() -> None:
    with pytest.raises(PolicyError, match="lineage"):
        policy(_one("{scan_incomplete: true}", lineage="any"))


def test_cel_when_over_the_evidence_document() -> None:
    text = (
        "name: p\nrules:\n  - id: big-pickle\n    effect: deny\n    message: '{model.repo_id}'\n"
        "    match: {file_formats: [pickle]}\n"
        "    when: files.exists(f, f.format == 'pickle' && f.size > 100)\n"
    )
    p = policy(text)
    small = hf("a/b")
    small["files"] = [file("x.pkl", "pickle")]
    large = hf("a/b")
    large["files"] = [{**file("x.pkl", "pickle"), "size": 1000}]
    assert fired(run(p, small)) == []
    verdict = run(p, large)
    assert fired(verdict) == ["big-pickle"]
    assert verdict.reasons[0].message == "a/b"
    assert verdict.reasons[0].evidence[-1].startswith("when: files.exists")


def test_cel_that_raises_at_load_names_file_and_line() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:6: rule 'r': when: raises on a scan with no"):
        policy(
            "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n"
            "    when: publsher.country == 'FR'\n"
        )


def test_cel_that_raises_on_some_evidence_names_file_and_line() -> None:
    p = policy(
        "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n"
        "    when: size(files) > 0 && 10 / (files[0].size - 1) > 0\n"
    )
    assert fired(run(p, facts(file("a", "json") | {"size": 3}))) == ["r"]
    with pytest.raises(PolicyError, match=r"p\.yaml:6: rule 'r': when: .*divide by zero"):
        run(p, facts(file("a", "json")))


def test_unknown_placeholder_is_an_error_at_load() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:5: rule 'r': message: \{publisher.nation\}"):
        policy(
            "name: p\nrules:\n  - id: r\n    effect: deny\n    message: '{publisher.nation}'\n"
            "    match: {publisher_known: false}\n"
        )


def test_cel_that_gives_no_boolean_is_an_error() -> None:
    with pytest.raises(PolicyError, match=r"p\.yaml:6: .*expected true or false, got IntType 2"):
        policy("name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n    when: '1 + 1'\n")
    p = policy(
        "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n"
        "    when: size(files) == 0 || files[0].path\n"
    )
    with pytest.raises(PolicyError, match="expected true or false"):
        run(p, facts(file("a", "json")))


def _waived(subject: str, expires: str = "2027-01-01") -> str:
    return (
        "name: p\nrules:\n  - {id: no-pickle, effect: deny, message: m, "
        "match: {file_formats: [pickle]}}\n"
        f"waivers:\n  - {{id: w1, rule: no-pickle, subject: '{subject}', expires: {expires},"
        " approved_by: sec@example.com, ticket: SEC-1, justification: reviewed by hand}\n"
    )


def test_file_waiver_sets_the_rule_aside_for_that_file_only() -> None:
    p = policy(_waived(f"sha256:{SHA}"))
    waived = run(p, facts(file("a.pkl", "pickle", SHA)))
    assert waived.decision is Decision.ALLOW
    assert waived.reasons[0].waived_by == "w1"
    assert [(w.waiver_id, w.status) for w in waived.waivers] == [("w1", "applied")]
    other = run(p, facts(file("a.pkl", "pickle", SHA), file("b.pkl", "pickle", "d" * 64)))
    assert other.decision is Decision.DENY


def test_model_waiver_needs_the_exact_commit() -> None:
    p = policy(_waived(f"hf://org/model@{COMMIT}"))
    document = hf("org/model")
    document["files"] = [file("a.pkl", "pickle")]
    assert run(p, document).decision is Decision.ALLOW
    elsewhere = hf("org/other")
    elsewhere["files"] = [file("a.pkl", "pickle")]
    assert run(p, elsewhere).decision is Decision.DENY


def test_expired_waiver_is_ignored_and_reported() -> None:
    p = policy(_waived(f"sha256:{SHA}", expires="2026-11-27"))
    verdict = run(p, facts(file("a.pkl", "pickle", SHA)))
    assert verdict.decision is Decision.DENY
    assert [(w.waiver_id, w.status) for w in verdict.waivers] == [("w1", "expired")]
    # Valid through its last day.
    assert run(p, facts(file("a.pkl", "pickle", SHA)), NOW - dt.timedelta(days=1)).decision is (
        Decision.ALLOW
    )


ENVS = """
name: p
mode: enforce
default_environment: production
rules:
  - {id: no-pickle, effect: deny, message: m, match: {file_formats: [pickle]}}
environments:
  research:
    mode: audit
    disable: [no-pickle]
    rules:
      - {id: warn-pickle, effect: warn, message: m, match: {file_formats: [pickle]}}
  production: {}
"""


def test_environments_change_mode_and_rules() -> None:
    document = facts(file("a.pkl", "pickle"))
    production = run(policy(ENVS), document)
    research = run(policy(ENVS, env="research"), document)
    assert (production.environment, production.mode, fired(production)) == (
        "production",
        "enforce",
        ["no-pickle"],
    )
    assert (research.environment, research.mode, fired(research)) == (
        "research",
        "audit",
        ["warn-pickle"],
    )
    assert research.decision is Decision.ALLOW
    assert research.policy_digest == production.policy_digest


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(PolicyError, match=r"no environment 'qa'.*production, research"):
        policy(ENVS, env="qa")


def _card(**metadata: Any) -> dict[str, Any]:
    return {"card": {"metadata": metadata, "headings": []}}


@pytest.mark.parametrize(
    ("match", "details", "fires"),
    [
        ("{licence_in: [apache-2.0]}", _card(license="Apache-2.0"), True),
        ("{licence_known: false}", _card(), True),
        ("{lineage_declared: true}", _card(base_model="meta-llama/Llama-3.1-8B"), True),
        ("{lineage_declared: true}", _card(), False),
        # Declared by the card but not resolved to a commit by a source.
        ("{lineage_identified: false}", _card(base_model=["a/b", "c/d"]), True),
        ("{remote_code: true}", {"config": {"auto_map": ["AutoModel"]}}, True),
        ("{remote_code: true}", {"config": {"model_type": "llama"}}, False),
        ("{model_card: true}", _card(), True),
        ("{model_card: true}", {}, False),
    ],
)
def test_facts_the_scan_read_from_the_model_files(
    match: str, details: dict[str, Any], fires: bool
) -> None:
    verdict = run(policy(_one(match)), facts(file("m.safetensors", "safetensors"), details=details))
    assert (fired(verdict) == ["r"]) is fires


def test_card_lineage_reaches_lineage_rules() -> None:
    details = _card(base_model="Qwen/Qwen2.5-7B", base_model_relation="finetune")
    verdict = run(
        policy(_one("{jurisdiction_in: [CN]}", lineage="any")),
        facts(file("m.safetensors", "safetensors"), details=details),
    )
    assert verdict.reasons[0].evidence == (
        "ancestor Qwen/Qwen2.5-7B (finetune, depth 1): publisher country CN",
    )


def test_matchers_added_later_leave_the_digest_of_policies_that_do_not_use_them() -> None:
    from verifier.policy.schema import Match

    assert "finding_paths" not in Match().model_dump(mode="json")
    assert Match(finding_paths=("a/*",)).model_dump(mode="json")["finding_paths"] == ["a/*"]
