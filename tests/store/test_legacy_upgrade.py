"""A database recorded at schema 0007 upgrades to head with every answer unchanged.

The fixture (`tests/store/legacy/0007.sql` and `0007-answers.json`) was written by
`tests/store/legacy/make_0007.py` with the code that wrote schema 0007: local, Hub, signed,
denied, waived, approved and failed scans, and what `history`, `show`, `report` and `decide`
printed for them then.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from verifier.cli import cli
from verifier.store import Store

LEGACY = Path(__file__).parent / "legacy"


def _answers() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LEGACY / "0007-answers.json").read_text())
    return data


@pytest.fixture
def legacy_url(tmp_path: Path) -> str:
    """A SQLite database holding exactly what verifier recorded at schema 0007."""
    path = tmp_path / "legacy.db"
    connection = sqlite3.connect(path)
    connection.executescript((LEGACY / "0007.sql").read_text())
    connection.close()
    return f"sqlite:///{path}"


def _same(old: dict[str, Any], new: str) -> None:
    if "--format" in old["args"] and old["args"][old["args"].index("--format") + 1] in (
        "json",
        "cyclonedx",
        "vsa",
    ):
        expected = json.loads(str(old["stdout"])) if old["stdout"] else None
        actual = json.loads(new) if new else None
        if old["args"][0] in ("show", "history", "decide") and actual is not None:
            # JSON output keeps every field and gains its layout version (docs/schemas).
            assert actual.pop("schema_version", None) is not None
        if old["args"][0] == "show" and actual is not None:
            # And verified lineage (null: these scans were recorded before lineage was verified).
            assert actual.pop("verified_lineage", "missing") is None
        assert actual == expected, old["args"]
    else:
        assert new == old["stdout"], old["args"]


def test_every_answer_is_unchanged_after_the_upgrade(legacy_url: str) -> None:
    with Store(legacy_url) as store:
        assert store.current_revision() == "0007"
    with Store.open(legacy_url) as store:
        assert store.current_revision() == store.head_revision()
    runner = CliRunner()
    for old in _answers()["answers"]:
        result = runner.invoke(
            cli, old["args"], env={"VERIFIER_DATABASE_URL": legacy_url}, catch_exceptions=False
        )
        assert result.exit_code == old["exit"], (old["args"], result.stderr)
        _same(old, result.stdout)
