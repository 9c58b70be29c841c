"""docs/evidence.md names every format and every level the code can produce."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.evidence.keys import fixed_ed25519
from tests.evidence.recorded import allowed_report
from verifier.evidence import EvidenceFormat, facts_of, render_evidence, vsa
from verifier.evidence.levels import Level

DOC = (Path(__file__).resolve().parents[2] / "docs" / "evidence.md").read_text()


def test_every_format_is_documented() -> None:
    assert [f.value for f in EvidenceFormat if f"`{f.value}`" not in DOC] == []


def test_every_level_is_documented() -> None:
    assert [level.value for level in Level if f"`{level.value}`" not in DOC] == []


def test_the_documented_vsa_and_envelope_have_the_real_fields() -> None:
    statement_doc, envelope_doc = (
        json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)[:2]
    )
    real = vsa.statement(facts_of(allowed_report()))
    assert set(statement_doc) == set(real)
    assert set(statement_doc["predicate"]) == set(real["predicate"])
    assert statement_doc["predicate"]["verifier"]["id"] == vsa.DEFAULT_VERIFIER_ID
    signed = json.loads(
        render_evidence(facts_of(allowed_report()), EvidenceFormat.VSA, signing_key=fixed_ed25519())
    )
    assert set(envelope_doc) == set(signed)
    assert set(envelope_doc["signatures"][0]) == set(signed["signatures"][0])


def test_documented_commands_exist() -> None:
    from click.testing import CliRunner

    from verifier.cli import cli

    for command in ("report", "approve", "verify-attestation"):
        assert f"verifier {command} " in DOC
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0
    for option in ("--signing-key", "--verifier-id", "--publishers", "-o FILE"):
        assert option in DOC or option in (DOC_COMMANDS)


DOC_COMMANDS = (Path(__file__).resolve().parents[2] / "docs" / "commands.md").read_text()
