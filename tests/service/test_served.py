"""`verifier serve --workers N`: the configuration handed to each worker process."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from verifier.cli import cli
from verifier.service.core import ServiceConfig
from verifier.service.served import config_text, read_config


def test_the_configuration_reaches_the_workers_unchanged(tmp_path: Path) -> None:
    config = ServiceConfig(
        database_url="postgresql+psycopg://u@h/db",
        policy_path=tmp_path / "p.yaml",
        publishers_path=None,
        waivers_paths=(tmp_path / "w1.yaml", tmp_path / "w2.yaml"),
        hub_endpoint="http://127.0.0.1:9",
        job_workers=3,
        upkeep_seconds=30.0,
        approval_key_path=tmp_path / "k.pem",
        notify_urls=("http://127.0.0.1:1/hook",),
        notify_secret="s" * 32,
    )
    assert read_config(config_text(config)) == config


def test_several_workers_need_postgresql(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    result = CliRunner().invoke(cli, ["serve", "--workers", "2", "--database-url", url])
    assert result.exit_code == 2, result.output
    assert "--workers" in result.output and "PostgreSQL" in result.output
