"""`verifier.api`: the examples of docs/api.md run as written, and the API's own contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import verifier.api
from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.sources.test_huggingface import model_files
from verifier.cli import cli
from verifier.errors import (
    CheckFailedError,
    ModelDeniedError,
    PlacementConflictError,
    UsageError,
    VerifierError,
)
from verifier.model import CheckResult, Placement, PlacementOutcome

ROOT = Path(__file__).resolve().parents[1]
#: The examples that run without a service; the one after a "needs a running service" comment
#: runs in tests/service/test_check_server.py.
EXAMPLES = re.findall(
    r"(?<!-->\n)```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S
)


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 4


def test_docs_examples_run_as_written(
    hub: HubEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    marker_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hub.add_repo("acme/tiny", model_files())
    hub.add_repo("acme/pickled", {**model_files(), "pytorch_model.bin": os_system(marker_dir)})
    monkeypatch.chdir(tmp_path)
    # huggingface_hub reads HF_HOME once, when first imported (by an earlier test here); a
    # program that runs the example reads the HF_HOME the `hub` fixture set.
    import huggingface_hub.constants

    cache = str(tmp_path / "hf-home" / "hub")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", cache)
    result = CliRunner().invoke(cli, ["lock", "hf://acme/tiny@main", "-o", "models.lock"])
    assert result.exit_code == 0, result.stderr
    for example in EXAMPLES:
        exec(compile(example, "docs/api.md", "exec"), {"__name__": "docs_example"})
    printed = capsys.readouterr().out
    assert "[('LOCK-DRIFT', 'config.json')]" in printed
    assert "not placed: the policy default decided deny" in printed


def test_results_are_frozen_and_typed(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    pulled = verifier.api.pull("hf://acme/tiny", local_dir=tmp_path / "tiny")
    assert isinstance(pulled.placement, Placement)
    assert pulled.placement.outcome is PlacementOutcome.PLACED
    assert pulled.commit == pulled.report.source["commit"]
    with pytest.raises(AttributeError):
        pulled.placement = pulled.placement  # type: ignore[misc]
    again = verifier.api.pull("hf://acme/tiny", local_dir=tmp_path / "tiny")
    assert again.placement.outcome is PlacementOutcome.UNCHANGED


def test_errors_are_the_documented_ones(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files())
    local = tmp_path / "tiny"
    verifier.api.pull("hf://acme/tiny", local_dir=local)
    (local / "README.md").write_text("changed")
    with pytest.raises(PlacementConflictError) as conflict:
        verifier.api.pull("hf://acme/tiny", local_dir=local)
    assert conflict.value.exit_code == 3
    assert "--force" in conflict.value.diagnostics()
    with pytest.raises(UsageError):
        verifier.api.pull(str(tmp_path))
    with pytest.raises(UsageError):
        verifier.api.pull("hf://acme/tiny", cache_dir=tmp_path, local_dir=tmp_path)
    assert issubclass(ModelDeniedError, VerifierError)


def test_check_raises_with_the_result(tmp_path: Path, hub: HubEmulator) -> None:
    hub.add_repo("acme/tiny", model_files())
    lock = tmp_path / "models.lock"
    assert CliRunner().invoke(cli, ["lock", "hf://acme/tiny", "-o", str(lock)]).exit_code == 0
    local = tmp_path / "tiny"
    verifier.api.pull("hf://acme/tiny", local_dir=local, lock=lock)
    result = verifier.api.check(local, lock=lock)
    assert isinstance(result, CheckResult) and result.matched
    (local / "extra.bin").write_bytes(b"x")
    with pytest.raises(CheckFailedError) as failed:
        verifier.api.check(local, lock=lock)
    assert failed.value.exit_code == 1
    assert [f.file for f in failed.value.result.findings] == ["extra.bin"]


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "verifier" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^"?verifier"? = \[[^\]]*"py\.typed"', pyproject, re.M)
