"""The docs stay true: finding codes documented, policy examples valid, README commands real."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from verifier.policy.schema import parse_policy

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CODE = re.compile(r'"([A-Z][A-Z0-9]+(?:-[A-Z0-9]+)+)"')


def emitted_codes() -> set[str]:
    """Every finding code written in verifier's source (a quoted CODE-LIKE-THIS string)."""
    codes: set[str] = set()
    for path in (ROOT / "verifier").rglob("*.py"):
        codes |= set(CODE.findall(path.read_text()))
    return codes


def test_every_finding_code_is_documented() -> None:
    documented = set(re.findall(r"^### ([A-Z0-9-]+)$", (DOCS / "findings.md").read_text(), re.M))
    assert emitted_codes() - documented == set()


def test_no_documented_code_is_stale() -> None:
    documented = set(re.findall(r"^### ([A-Z0-9-]+)$", (DOCS / "findings.md").read_text(), re.M))
    assert documented - emitted_codes() == set()


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


@pytest.mark.parametrize("block", _blocks(DOCS / "policy.md", "yaml"))
def test_policy_doc_examples_are_valid(block: str) -> None:
    parse_policy(block, source=DOCS / "policy.md")


def test_json_doc_example_has_the_contract_fields(tiny_model: Path) -> None:
    from click.testing import CliRunner

    from verifier.cli import cli

    [example] = _blocks(DOCS / "json.md", "json")
    documented = json.loads(example)
    result = CliRunner().invoke(cli, ["scan", str(tiny_model), "--format", "json"])
    actual = json.loads(result.stdout)
    assert set(documented) == set(actual)
    assert set(documented["files"][0]) == set(actual["files"][0])
    assert set(documented["policy"]) == set(actual["policy"])
    assert set(documented["summary"]) == set(actual["summary"])


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in readme
    assert ".venv/bin/python -m pytest" in ci
    assert "pip install -e '.[dev]'" in readme and "pip install --quiet -e '.[dev]'" in ci
