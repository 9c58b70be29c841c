"""The JSON Schemas shipped in verifier/schemas (and copied in docs/schemas) hold every document."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

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

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("facts", "scan", "lockfile", "check")


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
    return result.exit_code, json.loads(result.stdout)


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
