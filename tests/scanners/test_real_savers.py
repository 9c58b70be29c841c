"""What real savers write is allowed: the benign corpus of `real_savers.py`, scanned for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.scanners import real_savers
from verifier.cli import cli
from verifier.model import Decision, Severity
from verifier.pipeline import scan_target
from verifier.policy import Policy, default_policy_path, load_policy

SAMPLES = list(real_savers.SAMPLES.values())


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_path())


def test_the_corpus_covers_what_the_issue_names() -> None:
    names = set(real_savers.SAMPLES)
    for dtype in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64", "complex32"):
        assert f"torch-save-dtype-{dtype}" in names
    for layout in ("coo", "csr", "csc", "bsr", "bsc"):
        assert f"torch-save-sparse-{layout}" in names
    for compressor in real_savers.JOBLIB_COMPRESSORS:
        assert f"joblib-dump-all-dtypes-{compressor}" in names
    assert {"torch-save-hf-trainer-rng-state", "joblib-dump-masked", "numpy-save-uint8"} <= names
    assert {"torch-jit-save-scripted-module", "torch-jit-save-traced-module"} <= names
    for protocol in range(6):
        assert f"pickle-dump-protocol-{protocol}" in names
    for model in ("logistic-regression", "random-forest", "pipeline-scaler-logistic"):
        assert f"sklearn-{model}-joblib" in names
    assert "joblib-dump-compress-3-pkl" in names
    for label in real_savers.KERAS_SUFFIXES.values():
        assert f"keras-functional-adam-{label}" in names
    assert "transformers-trainer-checkpoint" in names
    assert "transformers-seq2seq-trainer-checkpoint" in names
    for label in real_savers.LIGHTNING_NAMESPACES:
        assert f"{label}-trainer-checkpoint" in names
    for label in real_savers.FABRIC_NAMESPACES:
        assert f"{label}-save" in names


def test_the_trainer_sample_is_a_whole_checkpoint(tmp_path: Path) -> None:
    # What the sample must hold for its scan to mean anything: the folder Trainer writes.
    folder = real_savers.build("transformers-trainer-checkpoint", tmp_path)
    written = {p.name for p in (folder / "checkpoint-2").iterdir()}
    assert written >= real_savers.TRAINER_CHECKPOINT_FILES, sorted(written)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_real_saver_output_is_allowed(
    tmp_path: Path, policy: Policy, sample: real_savers.RealSample
) -> None:
    folder = real_savers.build(sample.name, tmp_path)
    assert any(folder.iterdir()), f"{sample.saver} wrote nothing"
    report = scan_target(str(folder), policy=policy, recorder=None, workers=1)
    serious = [
        (f.file, f.member, f.code, f.evidence)
        for f in report.findings
        if f.severity.at_least(Severity.HIGH)
        or (f.severity is Severity.MEDIUM and f.code not in sample.warns)
    ]
    assert report.verdict.decision is Decision.ALLOW, (sample.saver, serious)
    assert not serious, (sample.saver, serious)
    warned = {f.code for f in report.findings if f.severity is Severity.MEDIUM}
    assert warned == set(sample.warns), (sample.saver, warned)


def test_verifier_scan_allows_the_whole_corpus(tmp_path: Path) -> None:
    # The command users run, over every sample at once: exit 0, nothing denied.
    for name in real_savers.SAMPLES:
        real_savers.build(name, tmp_path)
    result = CliRunner().invoke(cli, ["scan", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
