"""Policy tests: cases kept beside a policy (facts in, expected decision and rules out)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from verifier import bounded_json
from verifier.errors import PolicyError
from verifier.facts import DOCUMENT_FIELDS, parse_facts_document
from verifier.model import Decision
from verifier.policy.compiled import Policy
from verifier.policy.engine import decide
from verifier.policy.evidence import build_evidence
from verifier.policy.loading import load_policy
from verifier.policy.yamlfile import read_yaml, validate, where

#: Test files are found by this suffix, like Rego's `_test.rego`.
TEST_SUFFIX = "_test.yaml"
#: The moment cases are decided at unless they say otherwise: fixed, so results never drift.
DEFAULT_NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectation(_Strict):
    """What a case expects: the decision, and optionally exactly which rules fired."""

    decision: Decision
    rules: tuple[str, ...] | None = None
    waived: tuple[str, ...] | None = None
    waivers: dict[str, str] | None = None


class Case(_Strict):
    """One case: facts (inline or from a JSON file), an environment and the expectation."""

    name: str = Field(min_length=1)
    env: str | None = None
    now: dt.datetime | None = None
    facts: dict[str, Any] | None = None
    facts_file: str | None = None
    expect: Expectation


class TestFile(_Strict):
    """A `*_test.yaml` file: which policy, and its cases."""

    policy: str
    publishers: str | None = None
    #: Waiver files added to the policy, as `--waivers` does (paths relative to the test file).
    waivers: tuple[str, ...] = ()
    now: dt.datetime | None = None
    cases: tuple[Case, ...] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome: passed, or the differences found."""

    file: str
    name: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """Whether the case met every expectation."""
        return not self.problems


def _facts(case: Case, base: Path, at: str) -> dict[str, Any]:
    if (case.facts is None) == (case.facts_file is None):
        raise PolicyError(f"{at}: case {case.name!r}: give exactly one of facts or facts_file")
    if case.facts is not None:
        return _known_fields(case.facts, case, at)
    path = base / str(case.facts_file)
    try:
        data = bounded_json.loads(path.read_bytes(), bounded_json.TRUST_INPUT)
    except (OSError, ValueError) as exc:
        raise PolicyError(f"{at}: case {case.name!r}: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{at}: case {case.name!r}: {path} must hold a JSON object")
    return _known_fields(data, case, at)


def _known_fields(facts: dict[str, Any], case: Case, at: str) -> dict[str, Any]:
    """`facts`, refused when it names a field the facts document does not have."""
    unknown = sorted(set(facts) - DOCUMENT_FIELDS)
    if unknown:
        raise PolicyError(
            f"{at}: case {case.name!r}: facts: {', '.join(map(repr, unknown))} is not a field "
            "of the scan's JSON document (see docs/json.md)"
        )
    return facts


def _check(case: Case, policy: Policy, facts: dict[str, Any], now: dt.datetime) -> list[str]:
    evidence = build_evidence(parse_facts_document(facts), publishers=policy.publishers, now=now)
    verdict = decide(evidence, policy, now=now)
    expect = case.expect
    problems = []
    if verdict.decision is not expect.decision:
        problems.append(f"decision {verdict.decision.value}, expected {expect.decision.value}")
    fired = sorted(r.rule_id for r in verdict.reasons)
    if expect.rules is not None and fired != sorted(expect.rules):
        problems.append(f"rules fired {fired}, expected {sorted(expect.rules)}")
    waived = sorted(r.rule_id for r in verdict.reasons if r.waived_by)
    if expect.waived is not None and waived != sorted(expect.waived):
        problems.append(f"rules waived {waived}, expected {sorted(expect.waived)}")
    statuses = {w.waiver_id: w.status for w in verdict.waivers}
    if expect.waivers is not None and statuses != expect.waivers:
        problems.append(f"waivers {statuses}, expected {expect.waivers}")
    return problems


def run_test_file(path: Path) -> list[CaseResult]:
    """Run every case of one test file.

    Raises:
        PolicyError: the test file, its policy or a facts file is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy test file {path}: {exc}") from None
    spec = validate(TestFile, read_yaml(text, source=path), text=text, source=path)
    base = path.parent
    publishers = base / spec.publishers if spec.publishers else None
    policies: dict[str | None, Policy] = {}
    results = []
    for i, case in enumerate(spec.cases):
        at = where(text, path, ("cases", i))
        if case.env not in policies:
            policies[case.env] = load_policy(
                base / spec.policy,
                env=case.env,
                publishers=publishers,
                waivers=[base / name for name in spec.waivers],
            )
        now = case.now or spec.now or DEFAULT_NOW
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        problems = _check(case, policies[case.env], _facts(case, base, at), now)
        results.append(CaseResult(f"{path}", case.name, tuple(problems)))
    return results


def find_test_files(folder: Path) -> list[Path]:
    """Every `*_test.yaml` below `folder` (or `folder` itself when it is such a file).

    Raises:
        PolicyError: nothing to run.
    """
    if folder.is_file():
        return [folder]
    files = sorted(folder.rglob(f"*{TEST_SUFFIX}"))
    if not files:
        raise PolicyError(f"no policy tests (*{TEST_SUFFIX}) found in {folder}")
    return files
