"""The examples of docs/signatures.md run: sign with model_signing, verify with verifier."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.signatures.signing import make_chain, make_model, write_key
from verifier.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "signatures.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def _scan_line(prefix: str) -> list[str]:
    [block] = _blocks("sh")
    for line in block.splitlines():
        command = line.split("#")[0].strip()
        if command.startswith(prefix):
            return command.split()[1:]
    raise AssertionError(f"no example starting with {prefix!r}")


def test_signing_and_verifying_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    make_model(tmp_path / "my-model")
    write_key(tmp_path, "signer")
    chain = make_chain(tmp_path)
    shutil.copy(chain.leaf_key, "leaf.key")
    shutil.copy(chain.leaf, "leaf.pem")
    shutil.copy(chain.intermediate, "intermediate.pem")
    shutil.copy(chain.root, "root.pem")
    key_block, certificate_block = _blocks("python")
    namespace: dict[str, object] = {}
    runner = CliRunner()
    db = ["--database-url", f"sqlite:///{tmp_path / 'v.db'}"]

    exec(key_block, namespace)
    args = _scan_line("verifier scan my-model --public-key signer.pub")
    result = runner.invoke(cli, [*args, *db], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "signature: verified" in result.stdout

    exec(certificate_block, namespace)  # re-signs over the folder, model.sig included
    args = _scan_line("verifier scan my-model --certificate-chain")
    result = runner.invoke(cli, [*args, *db], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "signature: verified by signer@example.com (certificate)" in result.stdout
