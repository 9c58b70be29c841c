"""The JSON Schemas shipped in verifier/schemas (and copied in docs/schemas) hold every document."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import referencing
from click.testing import CliRunner
from referencing.jsonschema import DRAFT202012

from tests.hub_emulator import HubEmulator
from tests.samples import os_system
from tests.sources.test_huggingface import CARD, model_files
from verifier import model
from verifier.cli import cli
from verifier.facts import SCHEMA_VERSION, facts_document
from verifier.formats import JsonDocument

BAN_KINDS = ("model", "publisher", "jurisdiction", "blob")

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("facts", "scan", "lockfile", "check", *(d.value for d in JsonDocument))

#: The schema of every command that prints JSON (`--format json`), by command path.
COMMAND_SCHEMAS = {
    ("scan",): "scan",
    ("pull",): "scan",
    ("show",): "scan",
    ("check",): "check",
    ("history",): JsonDocument.HISTORY.value,
    ("decide",): JsonDocument.DECISION.value,
    ("lineage", "list"): JsonDocument.LINEAGE_BASES.value,
    **{("ban", kind): JsonDocument.BAN_CHANGE.value for kind in BAN_KINDS},
    ("ban", "lift"): JsonDocument.BAN_CHANGE.value,
    ("ban", "list"): JsonDocument.BANS.value,
    ("blast-radius",): JsonDocument.BLAST_RADIUS.value,
    ("redecide",): JsonDocument.REDECIDE.value,
    ("changes",): JsonDocument.CHANGES.value,
    ("watches",): JsonDocument.WATCHES.value,
    ("blobs", "gc"): JsonDocument.BLOBS_GC.value,
}


def shipped(name: str) -> dict[str, Any]:
    text = (files("verifier") / "schemas" / f"{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


SCHEMAS = {name: shipped(name) for name in NAMES}
REGISTRY: referencing.Registry[Any] = referencing.Registry().with_resources(
    (schema["$id"], DRAFT202012.create_resource(schema)) for schema in SCHEMAS.values()
)


def validate(name: str, document: Any) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMAS[name], registry=REGISTRY)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message[:300]}" for e in errors[:5]]


def validate_output(args: Sequence[str], document: Any) -> None:
    """Validate what the command `args` printed against its command's schema."""
    path = next(
        (path for path in COMMAND_SCHEMAS if tuple(args[: len(path)]) == path),
        None,
    )
    assert path is not None, f"no schema for the JSON of verifier {' '.join(args[:2])}"
    validate(COMMAND_SCHEMAS[path], document)


def _json_commands(command: click.Command, path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(command, click.Group):
        found: set[tuple[str, ...]] = set()
        for name, sub in command.commands.items():
            found |= _json_commands(sub, (*path, name))
        return found
    return {
        path
        for param in command.params
        if param.name == "fmt"
        and isinstance(param.type, click.Choice)
        and "json" in param.type.choices
    }


def test_every_command_that_prints_json_has_a_schema() -> None:
    assert _json_commands(cli) == set(COMMAND_SCHEMAS)


@pytest.mark.parametrize("document", list(JsonDocument))
def test_each_document_names_its_version_and_schema(document: JsonDocument) -> None:
    schema = SCHEMAS[document.value]
    assert schema["properties"]["schema_version"] == {"const": document.schema_version}
    assert "schema_version" in schema["required"]
    assert schema["$id"].endswith(f"/docs/schemas/{document.value}.schema.json")


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_valid_and_copied_in_docs(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    copy = ROOT / "docs" / "schemas" / f"{name}.schema.json"
    assert json.loads(copy.read_text()) == SCHEMAS[name], f"docs/schemas/{name} differs"


def test_enums_and_version_follow_the_code() -> None:
    defs = SCHEMAS["facts"]["$defs"]
    pairs = {
        "severity": model.Severity,
        "scan_status": model.ScanStatus,
        "file_format": model.FileFormat,
        "source_type": model.SourceType,
        "signature_status": model.SignatureStatus,
        "signature_method": model.SignatureMethod,
        "lineage_status": model.LineageStatus,
        "lineage_relation": model.LineageRelation,
    }
    for key, kind in pairs.items():
        assert defs[key]["enum"] == [e.value for e in kind], key
    assert SCHEMAS["facts"]["properties"]["schema_version"] == {"const": SCHEMA_VERSION}
    assert SCHEMAS["scan"]["$defs"]["scan"]["properties"]["schema_version"] == {
        "const": SCHEMA_VERSION
    }


def json_out(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    document = json.loads(result.stdout)
    validate_output(args, document)
    return result.exit_code, document


def test_local_scans_single_and_several(tiny_model: Path, tmp_path: Path, marker_dir: Path) -> None:
    _code, one = json_out("scan", str(tiny_model))
    validate("scan", one)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(os_system(marker_dir))
    code, several = json_out("scan", str(tiny_model), str(evil))
    assert code == 1
    assert several["schema_version"] == SCHEMA_VERSION
    validate("scan", several)
    _code, shown = json_out("show", one["scan_id"])
    validate("scan", shown)


def test_hub_scan_pull_lock_check_and_facts(hub: HubEmulator, tmp_path: Path) -> None:
    hub.add_repo("acme/tiny", model_files(), card_data=CARD, tags=["base_model:acme/base"])
    hub.add_repo("acme/base", model_files(fill=3))
    _code, scanned = json_out("scan", "hf://acme/tiny")
    validate("scan", scanned)
    assert scanned["provenance"] is not None and scanned["declared_files"]
    lock = tmp_path / "models.lock"
    assert CliRunner().invoke(cli, ["lock", "hf://acme/tiny", "-o", str(lock)]).exit_code == 0
    validate("lockfile", json.loads(lock.read_text()))
    code, pulled = json_out("pull", "--lock", str(lock), "--local-dir", str(tmp_path / "m"))
    assert code == 0
    validate("scan", pulled)
    _code, checked = json_out("check", str(tmp_path / "m"), "--lock", str(lock))
    validate("check", checked)
    (tmp_path / "m" / "extra").write_bytes(b"x")
    code, drifted = json_out("check", str(tmp_path / "m"), "--lock", str(lock))
    assert code == 1 and drifted["findings"]
    validate("check", drifted)

    from verifier import config
    from verifier.store import Store

    with Store.open(config.database_url()) as store:
        _scan_id, facts = store.get_facts(scanned["scan_id"])
    document = facts_document(facts)
    assert document["details"]
    validate("facts", document)


def test_the_schemas_can_fail(tiny_model: Path) -> None:
    _code, document = json_out("scan", str(tiny_model))
    with pytest.raises(AssertionError):
        validate("scan", {**document, "unexpected": 1})
    with pytest.raises(AssertionError):
        validate("scan", {k: v for k, v in document.items() if k != "files"})
    broken = {**document, "files": [{**document["files"][0], "sha256": "not-hex"}]}
    with pytest.raises(AssertionError):
        validate("scan", broken)


def test_schemas_are_package_data() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"schemas/*.json"' in pyproject
    shipped_names = {p.name for p in (ROOT / "verifier" / "schemas").iterdir()}
    assert shipped_names == {f"{name}.schema.json" for name in NAMES}


def test_history_decide_bans_redecide_changes_watches_lineage(
    hub: HubEmulator, tmp_path: Path
) -> None:
    """Every other JSON document, emitted by its command (json_out validates each one)."""
    hub.add_repo("acme/base", model_files(fill=3))
    hub.add_repo("acme/tuned", model_files(), card_data=CARD, tags=["base_model:acme/base"])
    _code, base = json_out("scan", "hf://acme/base")
    _code, tuned = json_out("scan", "hf://acme/tuned")
    subject = f"hf://acme/tuned@{tuned['source']['commit']}"
    digest = base["files"][0]["sha256"]

    _code, history = json_out("history")
    assert [s["scan_id"] for s in history["scans"]] == [tuned["scan_id"], base["scan_id"]]
    _code, decided = json_out("decide", subject)
    assert decided["decision"] == tuned["decision"] and decided["recorded"] is True
    _code, preview = json_out("blast-radius", "--model", "acme/base")
    assert {m["subject"] for m in preview["models"]} >= {subject}
    assert json_out("blast-radius", "--blob", f"sha256:{digest}")[1]["models"]
    _code, banned = json_out("ban", "model", "acme/base", "--reason", "withdrawn")
    assert subject in {a["subject"] for a in banned["affected"]}
    for kind, value in (("publisher", "evil"), ("jurisdiction", "zz"), ("blob", "ab" * 32)):
        assert json_out("ban", kind, value, "--reason", "test")[1]["affected"] == []
    _code, listed = json_out("ban", "list")
    assert len(listed["bans"]) == 4
    _code, changed = json_out("changes")
    assert any(c["subject"] == subject and c["cause"] == "ban" for c in changed["changes"])
    _code, lifted = json_out("ban", "lift", str(banned["ban"]["id"]), "--reason", "cleared")
    assert lifted["ban"]["active"] is False
    assert len(json_out("ban", "list", "--all")[1]["bans"]) == 4
    _code, again = json_out("redecide", "--all")
    assert {m["subject"] for m in again["models"]} >= {subject}
    assert CliRunner().invoke(cli, ["watch", "hf://acme/tuned"]).exit_code == 0
    _code, watched = json_out("watches")
    assert [w["target"] for w in watched["watches"]] == ["hf://acme/tuned@main"]
    _code, bases = json_out("lineage", "list")
    assert isinstance(bases["bases"], list)

    for name in NAMES[4:]:
        with pytest.raises(AssertionError):
            validate(name, {"schema_version": 1, "unexpected": True})
