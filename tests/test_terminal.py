"""Terminal habits: --version, -q and -v on every command, colour, progress, completion."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.progress import Progress

from verifier import __version__
from verifier.cli import cli
from verifier.progress import RichProgress

VERIFIER = Path(sys.executable).parent / "verifier"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and subgroup below `group`, by path."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


ALL_COMMANDS = sorted(_commands(cli))


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"verifier, version {__version__}"


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_takes_quiet_and_verbose(path: tuple[str, ...]) -> None:
    options = {opt for param in _command(path).params for opt in getattr(param, "opts", ())}
    assert {"-q", "--quiet", "-v", "--verbose"} <= options
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0 and "--quiet" in result.stdout and "--verbose" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["-q", "scan", "{model}", "--format", "json"],
        ["scan", "{model}", "-q", "-v", "--format", "json"],
        ["-v", "scan", "--quiet", "{model}", "--format", "json"],
    ],
    ids=["before", "after", "both"],
)
def test_quiet_and_verbose_before_or_after_the_command(tiny_model: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, [a.replace("{model}", str(tiny_model)) for a in args])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"] == "allow"


@pytest.mark.parametrize(
    "args",
    [["ban", "-q", "list"], ["ban", "list", "-q"], ["-v", "lineage", "-q", "list", "-v"]],
    ids=" ".join,
)
def test_quiet_and_verbose_on_a_group_and_its_command(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


def test_quiet_silences_status_lines_not_errors(tiny_model: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    scan_id = json.loads(runner.invoke(cli, ["scan", str(tiny_model), "--format", "json"]).stdout)[
        "scan_id"
    ]
    out = tmp_path / "summary.md"
    loud = runner.invoke(cli, ["report", scan_id, "--format", "markdown", "-o", str(out)])
    assert loud.exit_code == 0 and f"wrote {out}" in loud.stderr
    quiet = runner.invoke(cli, ["report", scan_id, "--format", "markdown", "-o", str(out), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    failed = runner.invoke(cli, ["-q", "show", "no-such-scan"])
    assert failed.exit_code == 2 and failed.stderr.startswith("error:")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VERIFIER), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_logs_details_to_stderr(tiny_model: Path, tmp_path: Path, where: str) -> None:
    # A fresh database: alembic logs its migrations at INFO, which only -v shows.
    env = {"VERIFIER_HOME": str(tmp_path / "home")}
    plain = _run("scan", str(tiny_model), "--format", "json", env=env)
    assert plain.returncode == 0 and plain.stderr == ""
    env = {"VERIFIER_HOME": str(tmp_path / "home-verbose")}
    args = ["-v", "scan", str(tiny_model)] if where == "before" else ["scan", str(tiny_model), "-v"]
    verbose = _run(*args, "--format", "json", env=env)
    assert verbose.returncode == 0
    assert "INFO alembic" in verbose.stderr


def test_tables_have_colour_on_a_terminal_unless_no_color(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    runner = CliRunner()
    # color=True: the runner keeps ANSI codes as a terminal would receive them.
    coloured = runner.invoke(cli, ["scan", str(tiny_model)], color=True)
    assert coloured.exit_code == 0 and "\x1b[" in coloured.stdout
    piped = runner.invoke(cli, ["scan", str(tiny_model)])  # not a terminal: stripped
    assert piped.exit_code == 0 and "\x1b" not in piped.stdout
    monkeypatch.setenv("NO_COLOR", "1")
    plain = runner.invoke(cli, ["scan", str(tiny_model)], color=True)
    assert plain.exit_code == 0 and "\x1b" not in plain.stdout
    assert "decision: ALLOW" in plain.stdout
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    dumb = runner.invoke(cli, ["history"], color=True)
    assert dumb.exit_code == 0 and "\x1b" not in dumb.stdout


def test_no_bar_until_there_is_something_to_download() -> None:
    buffer = io.StringIO()
    bar = Progress(console=Console(file=buffer, force_terminal=True, width=100))
    progress = RichProgress(bar)
    progress.add_total(0)  # a local scan: nothing to fetch
    progress.advance(0)
    assert bar.tasks == [] and not bar.live.is_started
    progress.add_total(10)
    assert bar.live.is_started and bar.tasks[0].total == 10
    bar.stop()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shell_completion_scripts(shell: str) -> None:
    result = _run(env={"_VERIFIER_COMPLETE": f"{shell}_source"})
    assert result.returncode == 0
    assert "_VERIFIER_COMPLETE" in result.stdout
