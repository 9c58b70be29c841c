"""`verifier report` through click: recorded scans only, one clear line for bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.evidence.recorded import COMMIT, SCAN_ID, allowed_report, denied_report
from verifier.cli import cli
from verifier.store import Store


def _run(*args: str, database_url: str) -> tuple[int, str, str]:
    env = {"VERIFIER_DATABASE_URL": database_url}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def recorded(database_url: str) -> str:
    with Store.open(database_url) as store:
        store.record_scan(allowed_report())
        store.record_scan(denied_report())
    return database_url


def test_report_by_scan_id_and_by_pinned_target(recorded: str) -> None:
    code, by_id, _ = _run("report", SCAN_ID[:8], "--format", "cyclonedx", database_url=recorded)
    assert code == 0
    target = f"hf://Qwen/Qwen2.5-0.5B-Instruct@{COMMIT}"
    code, by_target, _ = _run("report", target, "--format", "cyclonedx", database_url=recorded)
    assert code == 0
    assert by_id == by_target
    assert json.loads(by_id)["metadata"]["component"]["version"] == COMMIT


def test_report_of_a_local_scan_end_to_end(tiny_model: Path, sqlite_url: str) -> None:
    code, out, _ = _run("scan", str(tiny_model), "--format", "json", database_url=sqlite_url)
    assert code == 0
    scan_id = json.loads(out)["scan_id"]
    code, text, _ = _run("report", scan_id, "--format", "markdown", database_url=sqlite_url)
    assert code == 0
    assert text.startswith("## Model verification: tiny-model: PASSED")
    assert "`model.safetensors`" in text
    # Facts noted during the scan's read pass, recorded and read back from the database.
    assert "| Architecture | TinyLinear; type tiny; 276 parameters |" in text
    assert "| Licence | apache-2.0 |" in text


def test_output_file_is_written_whole(recorded: str, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "bom.json"
    code, stdout, _ = _run(
        "report", SCAN_ID, "--format", "cyclonedx", "-o", str(out), database_url=recorded
    )
    assert code == 0 and stdout == ""
    assert json.loads(out.read_text())["bomFormat"] == "CycloneDX"
    assert os.listdir(folder) == ["bom.json"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("ffffffffffffffffffffffffffffffff", "no recorded scan"),
        (f"hf://Qwen/Qwen2.5-7B@{COMMIT}", "hf://Qwen/Qwen2.5-7B@"),
        ("hf://Qwen/Qwen2.5-0.5B-Instruct@main", "pinned target"),
    ],
)
def test_unknown_targets_are_one_line_exit_2(recorded: str, target: str, expected: str) -> None:
    code, out, err = _run("report", target, "--format", "markdown", database_url=recorded)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and expected in err


def test_unwritable_output_is_one_line_exit_3_and_leaves_nothing(
    recorded: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "bom.json"
    code, _, err = _run(
        "report", SCAN_ID, "--format", "cyclonedx", "-o", str(missing), database_url=recorded
    )
    assert code == 3 and len(err.strip().splitlines()) == 1 and "cannot write" in err
    # A parent that is a file cannot hold the output, even for root.
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    code, _, err = _run(
        "report",
        SCAN_ID,
        "--format",
        "markdown",
        "-o",
        str(blocker / "x.md"),
        database_url=recorded,
    )
    assert code == 3 and "cannot write" in err and blocker.read_text() == ""
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_a_failed_scan_reports_failed_and_is_never_approved(
    sqlite_url: str, tmp_path: Path
) -> None:
    from tests.evidence.keys import p256, write_pair

    with Store.open(sqlite_url) as store:
        store.record_failed_scan(
            scan_id="fa11ed00000040008000000000000001",
            target="/models/x",
            started_at="2026-01-02T00:00:00+00:00",
            finished_at="2026-01-02T00:00:01+00:00",
            tool_version="0.1.0",
            error="OSError: disk on fire",
        )
    code, text, _ = _run("report", "fa11ed00", "--format", "vsa", database_url=sqlite_url)
    assert code == 0
    assert json.loads(text)["predicate"]["verificationResult"] == "FAILED"
    code, text, _ = _run("report", "fa11ed00", "--format", "markdown", database_url=sqlite_url)
    assert code == 0 and "SCAN-FAILED" in text and "FAILED" in text.splitlines()[0]
    private, _ = write_pair(tmp_path / "keys", "org", p256())
    code, _, err = _run(
        "approve",
        "fa11ed00",
        "--signing-key",
        str(private),
        "-o",
        str(tmp_path / "a.sig"),
        database_url=sqlite_url,
    )
    assert code == 1 and "status failed" in err and not (tmp_path / "a.sig").exists()


def test_own_publisher_registry_overrides_the_shipped_one(recorded: str, tmp_path: Path) -> None:
    registry = tmp_path / "publishers.yaml"
    registry.write_text(
        "version: 1\npublishers:\n  Qwen:\n    legal_entity: Example Holding\n"
        "    country: NL\n    source: https://example.org/qwen\n    reviewed: 2026-01-01\n"
    )
    code, text, _ = _run(
        "report",
        SCAN_ID,
        "--format",
        "markdown",
        "--publishers",
        str(registry),
        database_url=recorded,
    )
    assert (
        code == 0
        and "| Publisher | Example Holding (NL), source: https://example.org/qwen |" in text
    )
    registry.write_text("version: 1\npublishers: [\n")
    code, _, err = _run(
        "report",
        SCAN_ID,
        "--format",
        "markdown",
        "--publishers",
        str(registry),
        database_url=recorded,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_vsa_uri_becomes_an_attestation_reference(recorded: str) -> None:
    code, text, _ = _run(
        "report",
        SCAN_ID,
        "--format",
        "cyclonedx",
        "--vsa-uri",
        "https://evidence.example.org/qwen.vsa.json",
        database_url=recorded,
    )
    assert code == 0
    refs = json.loads(text)["metadata"]["component"]["externalReferences"]
    assert {
        "type": "attestation",
        "url": "https://evidence.example.org/qwen.vsa.json",
        "comment": "SLSA verification summary",
    } in refs
