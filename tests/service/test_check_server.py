"""`verifier check PATH --server URL`: a folder on disk against the service's record and decision,
through the real client and a real server on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import verifier.api
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.service.conftest import Running
from tests.sources.test_huggingface import model_files
from tests.test_check import make_model
from tests.test_schemas import validate
from verifier.cli import cli
from verifier.errors import CheckFailedError, ServiceError, UsageError
from verifier.model import Decision, ScanStatus
from verifier.service.model import Role

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, token: str | None, server: str | None = None) -> Result:
    env = {"VERIFIER_TOKEN": token or "", "VERIFIER_SERVER": server or ""}
    return CliRunner().invoke(cli, list(args), env=env)


def _scanned(server: Running, repo: str) -> str:
    """Have the service scan `repo` (through `scan --server`); its commit."""
    token = server.tokens[Role.SCANNER]
    result = _cli("scan", f"hf://{repo}", "--server", server.url, "--format", "json", token=token)
    assert result.exit_code in (0, 1), result.output
    commit: str = json.loads(result.stdout)["source"]["commit"]
    return commit


def _check(server: Running, folder: Path, *args: str) -> tuple[int, Any, Result]:
    result = _cli(
        "check",
        str(folder),
        "--server",
        server.url,
        "--format",
        "json",
        *args,
        token=server.tokens[Role.VIEWER],
    )
    document = json.loads(result.stdout) if result.stdout.strip() else None
    if document is not None:
        validate("check", document)
    return result.exit_code, document, result


def _drift(document: Any) -> list[tuple[str, str | None]]:
    return sorted((f["code"], f["file"]) for f in document["findings"])


def test_the_scanned_bytes_pass_and_any_other_bytes_fail(
    server: Running, hub: HubEmulator, tmp_path: Path
) -> None:
    files = model_files()
    hub.add_repo("acme/tiny", files)
    commit = _scanned(server, "acme/tiny")
    folder = tmp_path / "tiny"
    make_model(folder, files)

    code, document, result = _check(server, folder, "--model", f"acme/tiny@{commit}")
    assert code == 0, result.output
    assert document["matched"] and document["findings"] == []
    decision = document["decision"]
    assert decision["decision"] == "allow" and decision["status"] == "complete"
    assert decision["subject"] == f"hf://acme/tiny@{commit}" and decision["server"] == server.url
    assert document["commit"] == commit and len(document["files"]) == len(files)

    table = _cli(
        "check", str(folder), "--server", server.url, "--model", f"hf://acme/tiny@{commit}",
        token=server.tokens[Role.VIEWER],
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert f"matches acme/tiny@{commit} (4 files hashed, 4 recorded by the service)" in table.stdout
    assert "decision: ALLOW" in table.stdout

    (folder / "config.json").write_bytes(b'{"model_type": "tiny", "hidden_size": 5}')
    (folder / "pytorch_model.bin").write_bytes(b"never scanned")
    (folder / "sub" / "tokenizer.json").unlink()
    code, document, _ = _check(server, folder, "--model", f"acme/tiny@{commit}")
    assert code == 1
    assert _drift(document) == [
        ("RECORD-DRIFT", "config.json"),
        ("RECORD-DRIFT", "pytorch_model.bin"),
        ("RECORD-DRIFT", "sub/tokenizer.json"),
    ]
    assert document["decision"]["decision"] == "allow"  # allowed, but not these bytes


def test_a_denied_model_fails_even_with_its_exact_bytes(
    server: Running, hub: HubEmulator, tmp_path: Path, marker_dir: Path
) -> None:
    files = {**model_files(), "pytorch_model.bin": os_system(marker_dir)}
    hub.add_repo("acme/evil", files)
    commit = _scanned(server, "acme/evil")
    folder = tmp_path / "evil"
    make_model(folder, files)
    code, document, _ = _check(server, folder, "--model", f"acme/evil@{commit}")
    assert code == 1
    assert document["matched"] and document["decision"]["decision"] == "deny"
    assert document["decision"]["policy"]["reasons"]

    with pytest.raises(CheckFailedError) as failed:
        verifier.api.check(
            folder,
            server=server.url,
            model=f"acme/evil@{commit}",
            token=server.tokens[Role.VIEWER],
        )
    assert failed.value.exit_code == 1
    assert "the service denies acme/evil@" in failed.value.diagnostics()
    gate = failed.value.result.decision
    assert gate is not None and gate.verdict.decision is Decision.DENY
    assert not list(marker_dir.iterdir())


def test_a_model_the_service_never_scanned_fails_closed(
    server: Running, hub: HubEmulator, tmp_path: Path
) -> None:
    files = model_files()
    commit = hub.add_repo("acme/unseen", files).refs["main"]
    folder = tmp_path / "unseen"
    make_model(folder, files)
    code, document, result = _check(server, folder, "--model", f"acme/unseen@{commit}")
    assert code == 3 and document is None
    assert "no decision" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(ServiceError):
        verifier.api.check(
            folder,
            server=server.url,
            model=f"acme/unseen@{commit}",
            token=server.tokens[Role.VIEWER],
        )


def test_a_pulled_cache_snapshot_names_its_model_and_the_docs_example_runs(
    server: Running,
    hub: HubEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.add_repo("acme/tiny", model_files())
    commit = _scanned(server, "acme/tiny")
    pulled = CliRunner().invoke(cli, ["pull", "hf://acme/tiny"])  # writes refs/main too
    assert pulled.exit_code == 0, pulled.output
    snapshot = tmp_path / "hf-home" / "hub" / "models--acme--tiny" / "snapshots" / commit
    code, document, result = _check(server, snapshot)
    assert code == 0, result.output
    assert document["decision"]["subject"] == f"hf://acme/tiny@{commit}"

    # The example of docs/api.md, as written, with the service in the environment.
    import huggingface_hub.constants

    monkeypatch.setattr(
        huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub")
    )
    monkeypatch.setenv("VERIFIER_SERVER", server.url)
    monkeypatch.setenv("VERIFIER_TOKEN", server.tokens[Role.VIEWER])
    text = (ROOT / "docs" / "api.md").read_text()
    [example] = re.findall(r"needs a running service.*?-->\n```python\n(.*?)```", text, re.S)
    exec(compile(example, "docs/api.md", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.strip() == f"allow hf://acme/tiny@{commit}"

    result_ = verifier.api.check(snapshot, server=server.url)
    assert result_.decision is not None and result_.decision.status is ScanStatus.COMPLETE


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--model", "acme/tiny"], "40-hex commit"),
        ([], "--model ns/name@<commit>"),
        (["--model", "acme/tiny@main"], "40-hex commit"),
    ],
)
def test_usage_errors(server: Running, tmp_path: Path, args: list[str], says: str) -> None:
    make_model(tmp_path / "m", model_files())
    code, _document, result = _check(server, tmp_path / "m", *args)
    assert code == 2, result.output
    assert says in result.stderr


def test_lock_or_server_one_of_them(server: Running, tmp_path: Path) -> None:
    make_model(tmp_path / "m", model_files())
    neither = _cli("check", str(tmp_path / "m"), token="t")
    assert neither.exit_code == 2 and "--lock FILE or --server URL" in neither.stderr
    both = _cli("check", str(tmp_path / "m"), "--lock", "x.lock", "--server", server.url, token="t")
    assert both.exit_code == 2 and "not both" in both.stderr
    no_token = _cli(
        "check", str(tmp_path / "m"), "--server", server.url, "--model", "a/b@" + "0" * 40,
        token=None,
    )  # fmt: skip
    assert no_token.exit_code == 2 and "VERIFIER_TOKEN" in no_token.stderr
    with pytest.raises(UsageError):
        verifier.api.check(tmp_path / "m")
    with pytest.raises(UsageError):
        verifier.api.check(tmp_path / "m", lock="x.lock", server=server.url)


def test_a_lock_on_the_command_line_wins_over_verifier_server(
    hub: HubEmulator, tmp_path: Path
) -> None:
    hub.add_repo("acme/tiny", model_files())
    lock = tmp_path / "models.lock"
    assert CliRunner().invoke(cli, ["lock", "hf://acme/tiny", "-o", str(lock)]).exit_code == 0
    make_model(tmp_path / "m", model_files())
    # VERIFIER_SERVER points nowhere: a lockfile check never asks it.
    result = _cli(
        "check", str(tmp_path / "m"), "--lock", str(lock), token="t", server="http://127.0.0.1:9"
    )
    assert result.exit_code == 0, result.output
