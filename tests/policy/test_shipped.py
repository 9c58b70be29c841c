"""The shipped policies and publisher registry: valid, and their own tests pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.policy.helpers import POLICIES
from verifier.policy import load_policy
from verifier.policy.publishers import load_publishers, shipped_publishers
from verifier.policy.testing import find_test_files, run_test_file

TEST_FILES = find_test_files(POLICIES)
#: The publishers issue 5 asks the registry to hold.
REQUIRED_PUBLISHERS = [
    "Qwen",
    "deepseek-ai",
    "mistralai",
    "meta-llama",
    "google",
    "microsoft",
    "nvidia",
    "openai",
    "ibm-granite",
    "allenai",
    "tiiuae",
    "CohereForAI",
    "CohereLabs",
    "stabilityai",
    "HuggingFaceTB",
    "zai-org",
    "THUDM",
    "moonshotai",
    "01-ai",
    "baichuan-inc",
    "internlm",
    "MiniMaxAI",
    "tencent",
    "baidu",
    "openbmb",
    "LGAI-EXAONE",
    "upstage",
    "ai21labs",
    "Snowflake",
    "apple",
    "xai-org",
]


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: str(p.relative_to(POLICIES)))
def test_shipped_policy_tests_pass(path: Path) -> None:
    results = run_test_file(path)
    assert results
    assert [r for r in results if not r.passed] == []


def _waiver_file(path: Path) -> bool:
    """A file of waivers (`--waivers`), tested through the test file that uses it."""
    return path.name.endswith("-waivers.yaml")


def test_every_shipped_policy_has_tests() -> None:
    policies = {
        p
        for p in POLICIES.rglob("*.yaml")
        if not p.name.endswith("_test.yaml") and not _waiver_file(p)
    } - {POLICIES / "publishers.yaml"}
    tested = {p.with_name(p.name.removesuffix("_test.yaml") + ".yaml") for p in TEST_FILES}
    assert policies == {p for p in tested if not _waiver_file(p)}
    for policy in policies:
        load_policy(policy)


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text((POLICIES / "default.yaml").read_text())
    (tmp_path / "p_test.yaml").write_text(
        "policy: p.yaml\ncases:\n  - name: pickle\n    facts:\n      status: complete\n"
        "      files: [{path: a, format: pickle}]\n    expect: {decision: deny, rules: []}\n"
    )
    [result] = run_test_file(tmp_path / "p_test.yaml")
    assert result.problems == (
        "decision allow, expected deny",
        "rules fired ['pickle-formats-warn'], expected []",
    )


def test_registry_lists_the_major_publishers() -> None:
    registry = shipped_publishers()
    missing = [name for name in REQUIRED_PUBLISHERS if registry.lookup(name) is None]
    assert missing == []
    assert all(entry.source.startswith("https://") for entry in registry.entries.values())


def test_user_registry_overrides_and_extends(tmp_path: Path) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "version: 1\npublishers:\n  mistralai:\n    legal_entity: Override SAS\n    country: FR\n"
        "    source: https://example.org/x\n    reviewed: 2026-01-02\n    verified: true\n"
    )
    merged = shipped_publishers().merged(load_publishers(mine))
    entry = merged.lookup("MistralAI")
    assert entry is not None and entry.legal_entity == "Override SAS" and entry.verified


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "version: 1\npublishers:\n  a:\n    legal_entity: A\n    country: France\n"
            "    source: https://a\n    reviewed: 2026-01-01\n",
            "mine.yaml:5: publishers.a.country",
        ),
        (
            "version: 1\npublishers:\n  a:\n    legal_entity: A\n    country: FR\n"
            "    source: https://a\n",
            "mine.yaml:3: publishers.a.reviewed: Field required",
        ),
        (
            "version: 1\npublishers:\n  a: {legal_entity: A, country: FR, source: 'https://a', "
            "reviewed: 2026-01-01}\n  A: {legal_entity: A, country: FR, source: 'https://a', "
            "reviewed: 2026-01-01}\n",
            "listed twice",
        ),
    ],
)
def test_bad_registry_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    from verifier.errors import PolicyError

    mine = tmp_path / "mine.yaml"
    mine.write_text(text)
    with pytest.raises(PolicyError, match=message):
        load_publishers(mine)
