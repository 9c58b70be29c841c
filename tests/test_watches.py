"""Watched references: targets, the Hub's webhook payloads read (pure), `verifier watch`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from tests.test_schemas import validate
from verifier.cli import cli
from verifier.errors import UsageError
from verifier.watches import RefUpdate, hub_updates, parse_watch_target, secret_matches

SHA_A, SHA_B = "a" * 40, "b" * 40


def _payload(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "event": {"action": "update", "scope": "repo.content"},
        "repo": {"type": "model", "name": "acme/tiny", "headSha": SHA_A},
        "updatedRefs": [
            {"ref": "refs/heads/main", "oldSha": SHA_B, "newSha": SHA_A},
            {"ref": "refs/tags/v1", "oldSha": None, "newSha": SHA_A},
            {"ref": "refs/heads/old", "oldSha": SHA_B, "newSha": None},
            {"ref": "refs/pr/3", "oldSha": None, "newSha": SHA_B},
            {"ref": "refs/heads/main", "newSha": "not-a-commit"},
            "junk",
        ],
    }
    document.update(overrides)
    return document


def test_targets() -> None:
    assert parse_watch_target("hf://acme/tiny") == ("acme/tiny", "main")
    assert parse_watch_target("hf://acme/tiny@v1.0") == ("acme/tiny", "v1.0")
    for bad in ("acme/tiny", "/models/x", "hf://acme", "hf://../x"):
        with pytest.raises(UsageError):
            parse_watch_target(bad)


def test_branches_and_tags_that_moved_to_a_commit() -> None:
    assert hub_updates(_payload()) == (
        RefUpdate("acme/tiny", "main", SHA_A),
        RefUpdate("acme/tiny", "v1", SHA_A),
    )
    # Without updatedRefs, headSha is where main is now.
    assert hub_updates(_payload(updatedRefs=None)) == (RefUpdate("acme/tiny", "main", SHA_A),)


@pytest.mark.parametrize(
    "changes",
    [
        {"event": {"action": "create", "scope": "discussion"}},
        {"event": {"action": "update", "scope": "repo.config"}},
        {"repo": {"type": "dataset", "name": "acme/tiny"}},
        {"repo": {"type": "space", "name": "acme/tiny"}},
        {"updatedRefs": []},
    ],
)
def test_other_events_move_nothing(changes: dict[str, Any]) -> None:
    assert hub_updates(_payload(**changes)) == ()


def test_narrower_content_scopes_count_as_content() -> None:
    updates = hub_updates(_payload(event={"action": "update", "scope": "repo.content.lfs"}))
    assert len(updates) == 2


@pytest.mark.parametrize(
    "document",
    [[], "x", {"event": {}}, {"repo": {}}, _payload(repo={"type": "model", "name": 3})],
)
def test_what_is_not_a_payload_is_a_usage_error(document: Any) -> None:
    with pytest.raises(UsageError):
        hub_updates(document)


def test_secrets_compare_whole_and_need_configuring() -> None:
    assert secret_matches("s3cret", "s3cret")
    for given, expected in (("s3cre", "s3cret"), ("s3cretx", "s3cret"), (None, "s3cret")):
        assert not secret_matches(given, expected)
    assert not secret_matches("", "")
    assert not secret_matches("anything", None)


def test_watch_command(sqlite_url: str) -> None:
    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, [*args, "--database-url", sqlite_url])

    first = run("watch", "hf://acme/tiny")
    assert first.exit_code == 0 and first.stdout == "watching hf://acme/tiny@main (watch 1)\n"
    again = run("watch", "hf://ACME/tiny@main")
    assert again.stdout == "already watching hf://acme/tiny@main (watch 1)\n"
    assert run("watch", "/etc").exit_code == 2
    listed = run("watches", "--format", "json")
    validate("watches", json.loads(listed.stdout))
    [watch] = json.loads(listed.stdout)["watches"]
    assert (watch["target"], watch["commit"], watch["pending"]) == (
        "hf://acme/tiny@main",
        None,
        [],
    )
