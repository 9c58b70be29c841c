"""Policies over Hub provenance and lineage, end to end through the Hub emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.hub_emulator import HubEmulator
from tests.policy.helpers import POLICIES
from tests.sources.test_huggingface import model_files
from verifier.cli import cli

ACME = """version: 1
publishers:
  acme:
    legal_entity: Acme Models Inc.
    country: US
    source: https://acme.example/about
    reviewed: 2026-11-01
"""


def _run(*args: str) -> tuple[int, Any, str]:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout) if result.stdout else None, result.stderr


def test_origin_follows_lineage_and_decide_needs_no_download(
    hub: HubEmulator, tmp_path: Path
) -> None:
    publishers = tmp_path / "publishers.yaml"
    publishers.write_text(ACME)
    hub.add_repo("Qwen/Qwen2.5-0.5B", model_files(), card_data={"license": "apache-2.0"})
    tuned = hub.add_repo(
        "acme/tuned",
        model_files(),
        card_data={
            "license": "apache-2.0",
            "base_model": "Qwen/Qwen2.5-0.5B",
            "base_model_relation": "finetune",
        },
    )
    commit = tuned.refs["main"]
    origin = str(POLICIES / "examples" / "origin.yaml")
    code, doc, err = _run(
        "scan", "hf://acme/tuned", "--policy", origin, "--publishers", str(publishers)
    )
    assert code == 1, err
    reasons = {r["rule_id"]: r for r in doc["policy"]["reasons"]}
    assert set(reasons) == {"jurisdiction-allowed", "derived-models-only-from-listed-bases"}
    assert reasons["jurisdiction-allowed"]["evidence"] == [
        "ancestor Qwen/Qwen2.5-0.5B (finetune, depth 1): publisher country CN not in list"
    ]
    requests = len(hub.requests)

    eu = str(POLICIES / "eu-procurement.yaml")
    subject = f"hf://acme/tuned@{commit}"
    code, decided, err = _run("decide", subject, "--policy", eu, "--publishers", str(publishers))
    assert code == 0, err
    assert decided["scan_id"] == doc["scan_id"] and decided["recorded"] is True
    assert decided["policy"]["name"] == "eu-procurement" and decided["decision"] == "allow"
    # Without the user's registry, acme is not on record.
    code, decided, _ = _run("decide", subject, "--policy", eu)
    assert code == 1
    assert [r["rule_id"] for r in decided["policy"]["reasons"]] == ["publishers-on-record"]
    assert len(hub.requests) == requests  # not one request to the Hub
