"""The labelled corpus: every malicious sample denied with its code, every benign one allowed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.corpus import MARKER_NAME, BuiltSample, Technique, build_sample, load_all
from verifier.model import Decision
from verifier.pipeline import scan_target
from verifier.policy import Policy, default_policy_path, load_policy

TECHNIQUES = load_all()
MALICIOUS = [t for t in TECHNIQUES.values() if t.malicious]
BENIGN = [t for t in TECHNIQUES.values() if not t.malicious]


def _id(t: Technique) -> str:
    return f"{t.advisory.split()[0]}-{t.name}" if t.advisory else t.name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    out = tmp_path_factory.mktemp("corpus")
    marker = tmp_path_factory.mktemp("marker")
    yield out, marker
    assert not (marker / MARKER_NAME).exists(), "a payload ran while the corpus was scanned"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_path())


def _built(corpus: tuple[Path, Path], tech: Technique) -> BuiltSample:
    out, marker = corpus
    return build_sample(tech, out, marker)


def test_corpus_meets_its_size_goals() -> None:
    assert len(MALICIOUS) >= 60
    assert len(BENIGN) >= 30


@pytest.mark.parametrize("tech", MALICIOUS, ids=_id)
def test_malicious_sample_is_denied_with_its_code(
    corpus: tuple[Path, Path], policy: Policy, tech: Technique
) -> None:
    sample = _built(corpus, tech)
    report = scan_target(str(sample.path), policy=policy, recorder=None, workers=1)
    codes = {f.code for f in report.findings}
    assert report.verdict.decision is Decision.DENY, codes
    assert codes & set(tech.expect), f"expected one of {tech.expect}, got {sorted(codes)}"


@pytest.mark.parametrize("tech", BENIGN, ids=_id)
def test_benign_sample_is_allowed(
    corpus: tuple[Path, Path], policy: Policy, tech: Technique
) -> None:
    sample = _built(corpus, tech)
    report = scan_target(str(sample.path), policy=policy, recorder=None, workers=1)
    serious = [f for f in report.findings if f.severity.rank >= 2]
    assert report.verdict.decision is Decision.ALLOW, serious


@pytest.mark.parametrize(
    "name",
    [
        "torch-zip-state-dict-float32",
        "joblib-arrays-zlib",
        "joblib-arrays-raw",
        "pickle-plain-data-protocol0",
    ],
)
def test_strict_production_denies_benign_pickle_formats(
    corpus: tuple[Path, Path], policy: Policy, name: str
) -> None:
    sample = _built(corpus, TECHNIQUES[name])
    strict = load_policy(default_policy_path().parent / "strict-production.yaml")
    default_report = scan_target(str(sample.path), policy=policy, recorder=None, workers=1)
    strict_report = scan_target(str(sample.path), policy=strict, recorder=None, workers=1)
    assert default_report.verdict.decision is Decision.ALLOW
    warned = {r.rule_id for r in default_report.verdict.reasons if r.effect == "warn"}
    assert warned, "the default policy should warn on pickle formats"
    assert strict_report.verdict.decision is Decision.DENY
    denied = {r.rule_id for r in strict_report.verdict.reasons if r.effect == "deny"}
    assert denied & {"no-pickle-content", "no-pickle-formats"}, denied
