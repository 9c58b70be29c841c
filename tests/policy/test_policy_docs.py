"""docs/policy.md stays true: its policies load, its tests pass, its evidence example is real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.policy.helpers import NOW, hf
from verifier.bans import Ban, BanKind, blast_radius, estate_model
from verifier.facts import parse_facts_document
from verifier.policy import build_evidence
from verifier.policy.publishers import parse_publishers, shipped_publishers
from verifier.policy.schema import parse_policy
from verifier.policy.testing import run_test_file

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
TEXT = DOC.read_text()


def _blocks(tag: str) -> list[str]:
    return re.findall(rf"```{tag}\n(.*?)```", TEXT, re.S)


def _write_doc_files(folder: Path) -> None:
    for block in _blocks("yaml"):
        name = yaml.safe_load(block)["name"]
        (folder / f"{name}.yaml").write_text(block)
    for block in _blocks("yaml publishers"):
        if match := re.match(r"# file: (\S+)\n", block):
            (folder / match.group(1)).write_text(block)


def test_the_doc_has_examples_of_each_kind() -> None:
    assert len(_blocks("yaml")) >= 8
    assert len(_blocks("yaml test")) >= 2
    assert len(_blocks("yaml publishers")) >= 2


@pytest.mark.parametrize("block", _blocks("yaml publishers"))
def test_publisher_examples_are_valid(block: str) -> None:
    parse_publishers(block, source=DOC)


@pytest.mark.parametrize("index", range(len(_blocks("yaml test"))))
def test_doc_policy_tests_pass(index: int, tmp_path: Path) -> None:
    _write_doc_files(tmp_path)
    test_file = tmp_path / "doc_test.yaml"
    test_file.write_text(_blocks("yaml test")[index])
    results = run_test_file(test_file)
    assert results and [r for r in results if not r.passed] == []


def test_environment_example_switches_rules() -> None:
    [block] = [b for b in _blocks("yaml") if "environments-example" in b]
    research = parse_policy(block, source=DOC, env="research")
    production = parse_policy(block, source=DOC)
    assert [r.id for r in research.rules] == ["pickle-warn"]
    assert [r.id for r in production.rules] == ["no-pickle"]


def _shape(value: Any) -> Any:
    """Keys all the way down (the first item stands for a list)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list) and value:
        return [_shape(value[0])]
    return None


def test_evidence_example_has_the_real_fields() -> None:
    [block] = _blocks("json evidence")
    documented = json.loads(block)
    document = hf(
        "mistralai/Mistral-7B-v0.1",
        findings=[{"code": "X-Y", "severity": "low", "file": "a", "message": "m"}],
        lineage=[{"repo_id": "mistralai/base", "commit": "b" * 40}],
    )
    facts = parse_facts_document(document)
    model = estate_model(facts, publishers=shipped_publishers())
    ban = Ban(
        ban_id=3,
        kind=BanKind.PUBLISHER,
        value="mistralai",
        reason="r",
        banned_by="test",
        banned_at=NOW.isoformat(),
    )
    actual = build_evidence(
        facts,
        publishers=shipped_publishers(),
        now=NOW,
        bans=blast_radius([ban], [model]),
    )
    assert _shape(actual) == _shape(documented)
    table_fields = set(re.findall(r"^\| `([a-z_]+)[.`\[]", TEXT, re.M))
    assert set(actual) <= table_fields
