"""The compiled-policy cache: what it reads back is what validation compiles, and nothing it
holds (missing, truncated, foreign, stale) can change a decision or an error."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from tests.policy.helpers import POLICIES
from verifier.cli import cli
from verifier.errors import PolicyError
from verifier.model import FileFormat, Severity
from verifier.policy import default_policy_path, load_policy
from verifier.policy.codec import DecodeError, decode, encode
from verifier.policy.compiled import (
    NODE_MATCHERS,
    CompiledEnvironment,
    CompiledMatch,
    CompiledPolicyFile,
    CompiledRule,
    CompiledWaiver,
    HubScanStatus,
    Policy,
    RegisteredPublisher,
    ValidatedPolicy,
)
from verifier.policy.loading import (
    CACHE_FORMAT,
    SCHEMA_SOURCES,
    PolicyInputs,
    cache_folder,
    libraries_identity,
    read_cached,
    source_digest,
    write_cached,
)
from verifier.policy.publishers import PublisherEntry, shipped_publishers
from verifier.policy.schema import EnvironmentSet, Match, PolicyFile, Rule, Waiver, validate_policy

#: Every shipped policy file (not its tests, not the registry, not waivers files).
SHIPPED = sorted(
    path
    for path in POLICIES.rglob("*.yaml")
    if not path.name.endswith("_test.yaml")
    and path.name != "publishers.yaml"
    and "rules:" in path.read_text()
)
PACKAGE = Path(__file__).resolve().parents[2] / "verifier"


def _bound(policy: Policy) -> dict[str, Any]:
    """Everything a decision reads from a bound policy (programs by their expression)."""
    return {
        "document": policy.document,
        "environments": list(policy.document.environments),  # in the file's order
        "publishers": policy.publishers,
        "environment": policy.environment,
        "mode": policy.mode,
        "default": policy.default,
        "rules": policy.rules,
        "source": policy.source,
        "locations": dict(policy.locations),
        "programs": {rule_id: p.text for rule_id, p in policy.programs.items()},
        "digest": policy.digest(),
    }


def _entries() -> list[Path]:
    return sorted(cache_folder().glob("*.json"))


def test_the_shipped_policies_are_found() -> None:
    assert default_policy_path().resolve() in {p.resolve() for p in SHIPPED}
    assert len(SHIPPED) >= 4


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_cached_policy_is_the_validated_one(path: Path) -> None:
    envs: list[str | None] = [None, *yaml.safe_load(path.read_text()).get("environments", {})]
    for env in envs:
        validated = _bound(load_policy(path, env=env))  # a miss: validated, then written
        assert len(_entries()) == 1
        cached = _bound(load_policy(path, env=env))  # a hit
        assert cached == validated
    # The entry holds what the schema compiles, field for field, and the digest's dump.
    (entry,) = _entries()
    document = json.loads(entry.read_bytes())["policy"]
    parsed = PolicyFile.model_validate(yaml.safe_load(path.read_text()))
    assert document == parsed.model_dump(mode="json")


def test_a_warm_load_reads_the_cache(tmp_path: Path) -> None:
    # A policy whose cached entry was edited (by hand, with a valid shape) decides as the
    # entry says: proof the load read it rather than validating again.
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {}}\n")
    with pytest.raises(PolicyError):
        load_policy(path)  # invalid (no matcher): nothing written
    assert _entries() == []
    path.write_text(
        "name: p\nrules:\n  - {id: a, effect: deny, message: m, match: {model_card: true}}\n"
    )
    load_policy(path)
    (entry,) = _entries()
    data = json.loads(entry.read_bytes())
    data["policy"]["name"] = "edited"
    entry.write_text(json.dumps(data))
    assert load_policy(path).name == "edited"


@pytest.mark.parametrize(
    ("compiled", "model"),
    [
        (CompiledMatch, Match),
        (CompiledRule, Rule),
        (CompiledWaiver, Waiver),
        (CompiledEnvironment, EnvironmentSet),
        (CompiledPolicyFile, PolicyFile),
        (RegisteredPublisher, PublisherEntry),
    ],
)
def test_each_compiled_type_has_its_schema_models_fields(
    compiled: type[Any], model: type[BaseModel]
) -> None:
    assert [f.name for f in dataclasses.fields(compiled)] == list(model.model_fields)


# Generated policies: every matcher, environments, waivers, in random combinations.
_LISTS = {
    "finding_codes": ["PICKLE-IMPORTS", "X-Y"],
    "finding_codes_not_in": ["A-B"],
    "finding_paths": ["*.bin", "a/*"],
    "finding_paths_not_in": ["docs/*"],
    "model_in": ["org/*", "Org/Model"],
    "model_not_in": ["bad/*"],
    "publisher_in": ["google", "Qwen"],
    "publisher_not_in": ["acme"],
    "jurisdiction_in": ["US", "FR"],
    "jurisdiction_not_in": ["CN"],
    "licence_in": ["apache-2.0", "mit"],
    "licence_not_in": ["other"],
    "signer_in": ["*@example.com"],
    "signer_not_in": ["eve@example.com"],
}
_FLAGS = [
    name
    for name, f in Match.model_fields.items()
    if f.annotation == "bool | None" or f.annotation == bool | None
]


def _random_match(rng: random.Random) -> dict[str, Any]:
    match: dict[str, Any] = {}
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        if kind == 0:
            name = rng.choice(sorted(_LISTS))
            match[name] = rng.sample(_LISTS[name], rng.randint(1, len(_LISTS[name])))
        elif kind == 1:
            match[rng.choice(_FLAGS)] = rng.random() < 0.5
        elif kind == 2:
            match["finding_severity_at_least"] = rng.choice(list(Severity)).value
        elif kind == 3:
            formats = [f.value for f in FileFormat]
            key = rng.choice(["file_formats", "file_formats_not_in"])
            match[key] = rng.sample(formats, rng.randint(1, 3))
        elif kind == 4:
            key = rng.choice(["model_age_days_under", "model_age_days_over"])
            match[key] = rng.randint(0, 400)
        else:
            statuses = [s.value for s in HubScanStatus]
            match["hub_scan_status_in"] = rng.sample(statuses, rng.randint(1, 4))
    return match


def _random_rule(rng: random.Random, rule_id: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": rule_id,
        "effect": rng.choice(["deny", "warn", "allow"]),
        "message": rng.choice(["m", "model {model.repo_id} at {model.commit}", "été ✓"]),
        "match": _random_match(rng),
    }
    if rng.random() < 0.3:
        rule["severity"] = rng.choice(list(Severity)).value
    if rng.random() < 0.2:
        rule["when"] = rng.choice(["scan.complete", "size(files) > 2 && !remote_code.present"])
    if rng.random() < 0.2 and set(rule["match"]) & NODE_MATCHERS:
        rule["lineage"] = rng.choice(["any", "all"])
    return rule


def _random_policy(rng: random.Random) -> dict[str, Any]:
    rules = [_random_rule(rng, f"r{i}") for i in range(rng.randint(1, 5))]
    doc: dict[str, Any] = {"version": 1, "name": f"gen-{rng.randrange(1000)}", "rules": rules}
    if rng.random() < 0.5:
        doc["default"] = rng.choice(["allow", "deny"])
    if rng.random() < 0.5:
        doc["mode"] = rng.choice(["enforce", "audit", "dry-run"])
    environments: dict[str, Any] = {}
    for e in range(rng.randint(0, 3)):
        env: dict[str, Any] = {"description": rng.choice(["", "prod"])}
        if rng.random() < 0.5:
            env["mode"] = rng.choice(["enforce", "audit"])
        if rng.random() < 0.5:
            env["default"] = rng.choice(["allow", "deny"])
        env["rules"] = [_random_rule(rng, f"e{e}-{i}") for i in range(rng.randint(0, 2))]
        env["disable"] = rng.sample([r["id"] for r in rules], rng.randint(0, 1))
        environments[rng.choice(["prod", "dev", "staging", "qa", "eu", "b"]) + str(e)] = env
    if environments:
        doc["environments"] = environments
        if rng.random() < 0.5:
            doc["default_environment"] = rng.choice(sorted(environments))
    doc["waivers"] = [
        {
            "id": f"w{i}",
            "rule": rng.choice(rules)["id"],
            "subject": rng.choice([f"hf://org/m@{'a' * 40}", f"sha256:{'b' * 64}"]),
            "expires": (dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(900))).isoformat(),
            "approved_by": "a@example.com",
            "ticket": f"T-{i}",
            "justification": "reviewed",
        }
        for i in range(rng.randint(0, 2))
    ]
    return doc


@pytest.mark.parametrize("seed", range(40))
def test_generated_policies_read_back_as_validated(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    text = yaml.safe_dump(_random_policy(rng), allow_unicode=True, sort_keys=rng.random() < 0.5)
    source = tmp_path / "gen.yaml"
    validated = validate_policy(text, source=source, publishers=shipped_publishers())
    parsed = PolicyFile.model_validate(yaml.safe_load(text))
    assert encode(validated.document) == parsed.model_dump(mode="json")
    write_cached("k", validated, folder=tmp_path)
    cached = read_cached("k", folder=tmp_path)
    assert cached == dataclasses.replace(validated, programs={})
    # Environments keep the file's order (dict equality would not see it).
    assert list(cached.document.environments) == list(validated.document.environments)
    envs = [None, *validated.document.environments]
    for env in envs:
        assert _bound(cached.bind(env, source=source)) == _bound(validated.bind(env, source=source))


def _valid_entry(tmp_path: Path) -> tuple[Path, ValidatedPolicy, dict[str, Any]]:
    validated = validate_policy(
        (POLICIES / "strict-production.yaml").read_text(),
        source=POLICIES / "strict-production.yaml",
        publishers=shipped_publishers(),
    )
    write_cached("k", validated, folder=tmp_path)
    entry = tmp_path / "k.json"
    return entry, validated, json.loads(entry.read_bytes())


def _mutations(data: dict[str, Any]) -> list[Any]:
    def changed(**edits: Any) -> dict[str, Any]:
        return {**data, **edits}

    policy = data["policy"]
    rule = policy["rules"][0]
    return [
        changed(format=CACHE_FORMAT + 1),
        changed(key="other"),
        changed(extra=1),
        {k: v for k, v in data.items() if k != "when_locations"},
        changed(when_locations=[]),
        changed(when_locations=[None] * len(data["when_locations"])),
        changed(policy={**policy, "name": 7}),
        changed(policy={**policy, "unknown": True}),
        changed(policy={k: v for k, v in policy.items() if k != "waivers"}),
        changed(policy={**policy, "mode": "lenient"}),
        changed(policy={**policy, "rules": "all"}),
        changed(policy={**policy, "rules": [{**rule, "severity": "dire"}, *policy["rules"][1:]]}),
        changed(policy={**policy, "rules": [{**rule, "match": {"size_over": 1}}]}),
        changed(policy={**policy, "version": True}),
        changed(publishers={"acme": {"legal_entity": "x"}}),
        changed(publishers=[["acme", {}]]),
        [data],
        None,
    ]


def test_a_foreign_or_malformed_entry_is_a_miss(tmp_path: Path) -> None:
    entry, validated, data = _valid_entry(tmp_path)
    assert read_cached("k", folder=tmp_path) == dataclasses.replace(validated, programs={})
    for mutation in _mutations(data):
        entry.write_text(json.dumps(mutation))
        assert read_cached("k", folder=tmp_path) is None, mutation


def test_a_truncated_or_unreadable_entry_is_a_miss(tmp_path: Path) -> None:
    entry, _, _ = _valid_entry(tmp_path)
    whole = entry.read_bytes()
    for cut in sorted({1, 2, len(whole) // 3, len(whole) // 2, len(whole) - 2, len(whole) - 1}):
        entry.write_bytes(whole[:cut])
        assert read_cached("k", folder=tmp_path) is None, cut
    entry.write_bytes(b"\xff\xfe" + whole)
    assert read_cached("k", folder=tmp_path) is None
    entry.unlink()
    entry.mkdir()
    assert read_cached("k", folder=tmp_path) is None
    assert read_cached("absent", folder=tmp_path) is None


def test_a_bad_entry_falls_back_to_validation_and_is_replaced() -> None:
    path = POLICIES / "strict-production.yaml"
    fresh = _bound(load_policy(path))
    (entry,) = _entries()
    whole = entry.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"{}", json.dumps({"format": 99}).encode()):
        entry.write_bytes(damaged)
        assert _bound(load_policy(path)) == fresh
        assert entry.read_bytes() == whole  # validated again, and written anew


def test_old_entries_are_removed_beyond_the_newest(tmp_path: Path) -> None:
    entry, validated, _ = _valid_entry(tmp_path)
    entry.unlink()
    for i in range(6):
        write_cached(f"k{i}", validated, folder=tmp_path, keep=4)
        os.utime(tmp_path / f"k{i}.json", ns=(10**18 + i, 10**18 + i))
    write_cached("last", validated, folder=tmp_path, keep=4)
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == ["k3", "k4", "k5", "last"]
    assert read_cached("last", folder=tmp_path) is not None


def test_an_unwritable_cache_folder_is_no_error(tmp_path: Path) -> None:
    cache = cache_folder().parent
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the folder would be")
    assert load_policy(default_policy_path()).name == "default"


def test_decode_is_strict_about_types() -> None:
    whole = encode(CompiledMatch(model_card=True))
    assert decode(CompiledMatch, whole) == CompiledMatch(model_card=True)
    # Only the later matchers may be left out (as the digest's dump leaves them when unset).
    assert decode(CompiledMatch, {**whole, "finding_paths": None}) == CompiledMatch(model_card=True)
    with pytest.raises(DecodeError, match="missing field 'model_in'"):
        decode(CompiledMatch, {k: v for k, v in whole.items() if k != "model_in"})
    for bad in ({"model_card": 1}, {"model_age_days_over": True}, {"model_in": "a"}, {"x": None}):
        with pytest.raises(DecodeError):
            decode(CompiledMatch, {**whole, **bad})
    with pytest.raises(DecodeError):
        decode(CompiledWaiver, {**encode(_a_waiver()), "expires": "soon"})


def _a_waiver() -> CompiledWaiver:
    return CompiledWaiver("w", "r", f"sha256:{'a' * 64}", dt.date(2027, 1, 1), "a", "t", "j")


def _inputs(**changes: Any) -> PolicyInputs:
    base = PolicyInputs(
        path=Path("p.yaml"),
        text="name: p\n",
        shipped_publishers="version: 1\n",
        publishers=None,
        waivers=(),
    )
    return dataclasses.replace(base, **changes)


def test_the_key_covers_every_input() -> None:
    keys = {
        _inputs().key("s"),
        _inputs().key("t"),
        _inputs(path=Path("q.yaml")).key("s"),
        _inputs(text="name: q\n").key("s"),
        _inputs(shipped_publishers="version: 1\n# more\n").key("s"),
        _inputs(publishers=(Path("pub.yaml"), "version: 1\n")).key("s"),
        _inputs(waivers=((Path("w.yaml"), "version: 1\n"),)).key("s"),
        _inputs(waivers=((Path("w.yaml"), "version: 1\n"),) * 2).key("s"),
    }
    assert len(keys) == 8
    assert _inputs().key("s") == _inputs(waivers=()).key("s")


def test_a_schema_source_change_changes_the_key(tmp_path: Path) -> None:
    copy = tmp_path / "verifier"
    for name in SCHEMA_SOURCES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE / name, copy / name)
    before = source_digest(copy)
    assert before is not None and before == source_digest(PACKAGE)
    for name in ("policy/schema.py", "policy/compiled.py", "model.py"):
        original = (copy / name).read_bytes()
        (copy / name).write_bytes(original + b"\n# edited\n")
        after = source_digest(copy)
        assert after is not None and after != before
        assert _inputs().key(after) != _inputs().key(before)
        (copy / name).write_bytes(original)
    (copy / "policy" / "codec.py").unlink()
    assert source_digest(copy) is None  # then nothing is cached


def test_an_upgraded_validator_library_changes_the_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "validatorlib_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    names = ["validatorlib_for_test", "no_such_library_for_test"]
    before = libraries_identity(names)
    assert before[0][1] == str(package / "__init__.py")
    assert before[1] == ["no_such_library_for_test", None]
    (package / "__init__.py").write_text("VERSION = 22\n")
    assert libraries_identity(names) != before
    assert [name for name, *_ in libraries_identity()] == [
        "pydantic",
        "pydantic_core",
        "yaml",
        "celpy",
    ]
    assert all(origin is not None for _, origin, *_ in libraries_identity())


def test_an_invalid_policy_gives_its_error_whatever_was_cached(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nrules:\n  - id: a\n    effect: deny\n    message: m\n"
        "    match: {model_card: true}\n"
    )
    load_policy(path)
    assert len(_entries()) == 1
    path.write_text(
        "name: p\nrules:\n  - id: a\n    effect: explode\n    message: m\n"
        "    match: {model_card: true}\n"
    )
    for _ in range(2):
        with pytest.raises(PolicyError, match=r"p\.yaml:4: rules\.0\.effect"):
            load_policy(path)
        result = CliRunner().invoke(cli, ["policy", "check", str(path)])
        assert result.exit_code == 2
        assert "p.yaml:4: rules.0.effect" in result.stderr
    assert len(_entries()) == 1


def test_an_unknown_environment_is_refused_from_the_cache_too() -> None:
    path = POLICIES / "strict-production.yaml"
    for _ in range(2):
        with pytest.raises(PolicyError, match="no environment 'nowhere' in policy"):
            load_policy(path, env="nowhere")
        load_policy(path)
