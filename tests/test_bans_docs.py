"""The documented ban, blast-radius, redecide and watch examples run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from verifier.cli import cli

DOCS = Path(__file__).resolve().parents[1] / "docs"
ROOT = DOCS.parent


def _section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end >= 0 else None]


def _commands(text: str) -> list[list[str]]:
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.startswith("verifier "):
                lines.append(shlex.split(line, comments=True)[1:])
    return lines


def test_the_policy_guide_bans_run_in_order(sqlite_url: str) -> None:
    commands = _commands(_section(DOCS / "policy.md", "## Bans"))
    assert [c[:2] for c in commands] == [
        ["blast-radius", "--model"],
        ["ban", "model"],
        ["ban", "list"],
        ["ban", "lift"],
    ]
    for args in commands:
        result = CliRunner().invoke(cli, [*args, "--database-url", sqlite_url])
        assert result.exit_code == 0, (args, result.output)


def test_the_command_reference_examples_parse() -> None:
    commands = []
    headings = (
        "## `verifier ban ",
        "## `verifier blast-radius",
        "## `verifier redecide",
        "## `verifier watch ",
    )
    for heading in headings:
        commands += _commands(_section(DOCS / "commands.md", heading))
    assert len(commands) == 10
    for args in commands:
        # --help last: every option before it must exist for the parse to reach it.
        result = CliRunner().invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, (args, result.output)
