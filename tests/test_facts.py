"""The facts model: its document reads back whole, derived facts are implemented once, and a
policy that names a field no fact fills is refused with its file and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.evidence.recorded import allowed_report, denied_report
from verifier import facts
from verifier.cli import cli
from verifier.errors import PolicyError
from verifier.facts import SCHEMA_VERSION, facts_document, parse_facts_document
from verifier.model import ModelCard, ModelDetails, ScanStatus, Severity, SignatureStatus
from verifier.policy.schema import parse_policy
from verifier.policy.testing import run_test_file
from verifier.report.json_format import report_document


@pytest.mark.parametrize("report", [allowed_report(), denied_report()])
def test_the_document_reads_back_as_the_same_facts(report: object) -> None:
    assert hasattr(report, "facts")
    scan = report.facts  # type: ignore[attr-defined]
    document = facts_document(scan)
    assert document["schema_version"] == SCHEMA_VERSION
    assert parse_facts_document(document) == scan


def test_json_output_is_the_facts_document_with_the_decision() -> None:
    report = allowed_report()
    output = report_document(report)
    document = facts_document(report)
    assert {k: v for k, v in document.items() if k != "details"} == {
        k: v for k, v in output.items() if k not in ("decision", "policy", "approvals")
    }


def test_a_partial_document_reads_fail_closed() -> None:
    scan = parse_facts_document(
        {
            "findings": [{"code": "X", "severity": "catastrophic"}],
            "files": [{"path": "a", "format": "never-heard-of"}],
            "signature": {"status": "trust-me"},
        }
    )
    assert scan.status is ScanStatus.INCOMPLETE
    assert scan.findings[0].severity is Severity.HIGH
    assert scan.files[0].format.value == "unknown"
    assert scan.signature is not None and scan.signature.status is SignatureStatus.INVALID
    assert not scan.files[0].complete  # an entry that does not say it was read to the end


@pytest.mark.parametrize("value", [None, "yes", 1, "true"])
def test_a_file_is_complete_only_when_the_document_says_true(value: object) -> None:
    entry: dict[str, object] = {"path": "a", "format": "json"}
    if value is not None:
        entry["complete"] = value
    assert not parse_facts_document({"files": [entry]}).files[0].complete
    entry["complete"] = True
    assert parse_facts_document({"files": [entry]}).files[0].complete


def test_licence_falls_back_to_the_card_once_for_every_reader() -> None:
    card = ModelDetails(card=ModelCard(metadata={"license": ["MIT", "other"]}))
    local = replace(denied_report().facts, details=card)
    assert facts.licence(local) == "MIT"
    hub = replace(allowed_report().facts, details=card)
    assert hub.provenance is not None and facts.licence(hub) == hub.provenance.license


def test_card_lineage_is_declared_but_never_identified() -> None:
    card = ModelCard(metadata={"base_model": ["a/b", ""], "base_model_relation": "merge"})
    local = replace(denied_report().facts, details=ModelDetails(card=card))
    [ancestor] = facts.ancestors(local) or ()
    assert (ancestor.repo_id, ancestor.relation, ancestor.declared_in) == (
        "a/b",
        "merge",
        "model card",
    )
    assert not ancestor.identified and ancestor.purl == "pkg:huggingface/a/b"
    assert facts.ancestors(denied_report().facts) is None
    hub = allowed_report().facts
    assert {a.declared_in for a in facts.ancestors(hub) or ()} == {"source"}


RULE = "name: p\nrules:\n  - id: r\n    effect: deny\n    message: m\n"


@pytest.mark.parametrize(
    ("rule", "line"),
    [
        ("    when: model.licence_name == 'x'\n", 6),  # `licence` is top-level; no such field
        ("    when: provenance.license == 'x'\n", 6),  # the evidence has no `provenance`
        ("    when: source.anything == 'x'\n", 6),
        ("    match: {hub_scan_status_in: [unsafe]}\n", 6),  # never a status the Hub reports
        ("    match: {card_data: true}\n", 6),
    ],
)
def test_a_policy_naming_an_unknown_field_is_refused_with_file_and_line(
    rule: str, line: int
) -> None:
    with pytest.raises(PolicyError, match=rf"^p\.yaml:{line}: "):
        parse_policy(RULE + rule, source=Path("p.yaml"))


def test_a_message_placeholder_below_source_must_exist() -> None:
    text = RULE.replace("message: m", "message: '{source.anything}'") + "    when: 'true'\n"
    with pytest.raises(PolicyError, match=r"^p\.yaml:5: .*source\.anything"):
        parse_policy(text, source=Path("p.yaml"))
    parse_policy(text.replace("anything", "root"), source=Path("p.yaml"))


def test_policy_check_exits_2_on_an_unknown_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(RULE + "    when: model.licence_name == 'x'\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(path)])
    assert result.exit_code == 2
    assert f"{path}:6:" in result.stderr


def test_a_policy_test_case_naming_an_unknown_fact_is_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(RULE + "    match: {lineage_declared: true}\n")
    test = tmp_path / "p_test.yaml"
    test.write_text(
        "policy: p.yaml\ncases:\n  - name: c\n    facts:\n      status: complete\n"
        "      lineage: [{repo_id: a/b}]\n    expect: {decision: deny}\n"
    )
    with pytest.raises(PolicyError, match=r"p_test\.yaml:3: case 'c': facts: 'lineage'"):
        run_test_file(test)
    test.write_text(
        test.read_text().replace("      lineage:", "      provenance:\n        lineage:")
    )
    assert [r.passed for r in run_test_file(test)] == [True]
