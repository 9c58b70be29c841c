"""Attribution against recorded fingerprints and the card's declaration."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from verifier.lineage.attribution import RELATED_TESTS, Reference, attribute
from verifier.lineage.compare import SCREEN_PASS, compare, screen
from verifier.lineage.fingerprint import Fingerprint


def _refs(family: dict[str, Fingerprint]) -> list[Reference]:
    return [
        Reference("acme/one", "a" * 40, "acme", family["one"], registered_base=True),
        Reference("other/two", "b" * 40, "other", family["two"], registered_base=True),
    ]


def test_renamed_fine_tune_names_its_undeclared_base(family: dict[str, Fingerprint]) -> None:
    result = attribute(
        family["permuted"], repo_id="evil/renamed", declared=[], references=_refs(family)
    )
    assert [v.reference.repo_id for v in result.verified_bases] == ["acme/one"]
    assert [v.reference.repo_id for v in result.undeclared_bases] == ["acme/one"]
    assert result.declared_matches is None


def test_false_declaration_is_a_mismatch(family: dict[str, Fingerprint]) -> None:
    result = attribute(
        family["tuned"], repo_id="x/tuned", declared=["other/two"], references=_refs(family)
    )
    assert result.declared_matches is False
    assert result.mismatched_declared == ("other/two",)
    assert [v.reference.repo_id for v in result.undeclared_bases] == ["acme/one"]


def test_true_declaration_matches(family: dict[str, Fingerprint]) -> None:
    result = attribute(
        family["int8"], repo_id="x/q", declared=["acme/one"], references=_refs(family)
    )
    assert result.declared_matches is True
    assert result.undeclared_bases == ()
    assert result.verified_bases[0].near_identical


def test_unrecorded_declared_base_is_unverifiable(family: dict[str, Fingerprint]) -> None:
    result = attribute(family["two"], repo_id="x/y", declared=["nobody/base"], references=[])
    assert result.declared_matches is None
    assert result.unverifiable_declared == ("nobody/base",)
    assert result.compared == 0


def test_earlier_commits_of_the_same_repository_are_not_bases(
    family: dict[str, Fingerprint],
) -> None:
    result = attribute(family["tuned"], repo_id="ACME/one", declared=[], references=_refs(family))
    assert result.verified_bases == ()


def test_a_recorded_model_that_is_no_base_is_related(family: dict[str, Fingerprint]) -> None:
    # Two derivatives of one base match each other: neither is the other's base.
    sibling = Reference("beta/tuned", "c" * 40, "beta", family["tuned"])
    result = attribute(
        family["permuted"], repo_id="x/p", declared=[], references=[*_refs(family), sibling]
    )
    assert [v.reference.repo_id for v in result.verified_bases] == ["acme/one"]
    assert [v.reference.repo_id for v in result.related] == ["beta/tuned"]
    assert [v.reference.repo_id for v in result.undeclared_bases] == ["acme/one"]


def test_a_declared_base_is_tested_however_many_models_look_related(
    family: dict[str, Fingerprint],
) -> None:
    # More near-copies than the related-model budget, all scoring above the declared base:
    # the declared base still gets its full test, so it is never called a mismatch unseen.
    copies = [
        Reference(f"fan/copy-{i}", None, "fan", family["int8"]) for i in range(RELATED_TESTS + 3)
    ]
    base = Reference("acme/one", "a" * 40, "acme", family["one"])
    result = attribute(
        family["tuned"], repo_id="x/t", declared=["acme/one"], references=[*copies, base]
    )
    assert result.declared_matches is True
    assert [v.reference.repo_id for v in result.verified_bases] == ["acme/one"]
    assert len(result.related) == RELATED_TESTS
    assert result.compared == RELATED_TESTS + 4


# -- sampled comparisons: which weights are compared is a per-scan secret --------------------


def test_screening_passes_derivatives_and_stops_unrelated_weights(
    family: dict[str, Fingerprint],
) -> None:
    """Over many seeds (each a different sample of matrices and units), the screening's excess
    stays above the pass mark for every derivative and below it for the independent base."""
    for seed in range(10):
        rng = np.random.default_rng(seed)
        for name in ("tuned", "permuted", "int8", "resized", "bf16", "merged"):
            excess = screen(family[name], family["one"], rng=rng)
            assert excess is not None and excess >= SCREEN_PASS, (seed, name, excess)
        for name in ("one", "tuned", "permuted"):
            excess = screen(family[name], family["two"], rng=rng)
            assert excess is not None and excess < SCREEN_PASS, (seed, name, excess)


def test_references_screened_together_score_as_screened_one_by_one(
    family: dict[str, Fingerprint], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Differential: with samples covering every matrix and unit, the batched screening gives
    each reference exactly the excess the per-pair path gives it with the same shuffles; a
    reference over other anchors (gathered, screened alone) and one that does not compare are
    kept in their places (the test fails when the batch pairs references with the wrong slice)."""
    from verifier.lineage import compare as compare_module

    monkeypatch.setattr(compare_module, "SCREEN_MATRICES", 1000)
    monkeypatch.setattr(compare_module, "SCREEN_UNITS", 1000)
    names = ("one", "two", "tuned", "permuted", "merged")
    other_anchors = _with_extra_anchor(family["one"])
    other_key = replace(family["two"], key_id="another-store")
    references = [*(family[n] for n in names), other_anchors, other_key]
    for candidate in ("tuned", "two"):
        batched = compare_module.screen_many(
            family[candidate], references, rng=np.random.default_rng(7)
        )
        single = [
            compare_module._screen_pair(family[candidate], r, np.random.default_rng(7))
            for r in references[:-1]
        ]
        assert batched[-1] is None and None not in batched[:-1] and None not in single
        # The same shuffles for every reference over the candidate's anchors; the gathered one
        # is screened after them, with later draws of the same generator.
        same = len(names)
        assert np.allclose(batched[:same], single[:same], atol=1e-5), (candidate, batched, single)
        passed = [b is not None and b >= SCREEN_PASS for b in batched[:-1]]
        related = {"tuned": [1, 0, 1, 1, 1, 1], "two": [0, 1, 0, 0, 1, 0]}[candidate]
        assert passed == [bool(r) for r in related], (candidate, batched)


def test_a_small_sample_still_attributes_and_still_refuses(family: dict[str, Fingerprint]) -> None:
    """The full test on two matrices and eight units each: bases still attributed, an
    independent base still not."""
    for seed in range(5):
        assert compare(family["permuted"], family["one"], seed=seed, matrices=2, units=8).derived
        unrelated = compare(family["tuned"], family["two"], seed=seed, matrices=2, units=8)
        assert not unrelated.derived, unrelated


def test_decisions_do_not_depend_on_the_secret_seed(family: dict[str, Fingerprint]) -> None:
    """Fresh secrets (the default) and fixed seeds give the same attribution."""
    outcomes = {
        tuple(
            v.reference.repo_id
            for v in attribute(
                family["tuned"], repo_id="x/t", declared=[], references=_refs(family), seed=seed
            ).verified_bases
        )
        for seed in (None, None, None, 0, 1, 2)
    }
    assert outcomes == {("acme/one",)}


def _with_extra_anchor(fingerprint: Fingerprint) -> Fingerprint:
    """The same fingerprint over one more anchor token (a row of noise in every profile), each
    profile normalised again over all of them: comparing it takes the gather path."""
    from dataclasses import replace

    from verifier.lineage.fingerprint import UnitProfile

    rng = np.random.default_rng(3)
    extra = max(fingerprint.anchor_ids) + 1

    def grown(profiles: np.ndarray) -> np.ndarray:
        stacked = np.vstack([profiles.astype(np.float32), rng.standard_normal(profiles.shape[1])])
        stacked -= stacked.mean(axis=0, keepdims=True)
        return (stacked / np.linalg.norm(stacked, axis=0, keepdims=True)).astype(np.float32)

    size = len(fingerprint.anchor_ids) + 1
    gram = np.zeros((size, size), dtype=np.float32)
    gram[:-1, :-1] = fingerprint.gram
    return replace(
        fingerprint,
        anchor_ids=(*fingerprint.anchor_ids, extra),
        gram=gram,
        matrices=tuple(UnitProfile(m.name, grown(m.profiles)) for m in fingerprint.matrices),
    )


def test_comparisons_over_every_anchor_equal_those_over_a_shared_subset(
    family: dict[str, Fingerprint],
) -> None:
    # Same key, same anchors: no gather and no second normalisation. A reference holding one
    # anchor more is gathered and normalised again over the shared ones: the scores agree.
    from verifier.lineage.compare import PreparedPairs

    for name in ("tuned", "two"):
        fast = PreparedPairs(family[name], family["one"])
        gathered = PreparedPairs(family[name], _with_extra_anchor(family["one"]))
        order = np.random.default_rng(5).permutation(len(family["one"].anchor_ids))
        assert abs(fast.score() - gathered.score()) < 2e-3
        assert abs(fast.score(order) - gathered.score(order)) < 2e-3


def test_a_full_test_stops_early_only_past_both_thresholds_twice_over() -> None:
    from verifier.lineage.compare import STRONG_DRAWS, VERIFIED_MARGIN, _overwhelming

    null = [0.30 + 0.001 * (i % 3) for i in range(STRONG_DRAWS)]
    assert _overwhelming(0.30 + 2.5 * VERIFIED_MARGIN, null)
    assert not _overwhelming(0.30 + 1.5 * VERIFIED_MARGIN, null)  # effect under twice the margin
    wide = [0.30 + 0.05 * (i % 3) for i in range(STRONG_DRAWS)]
    assert not _overwhelming(0.30 + 3 * VERIFIED_MARGIN, wide)  # z under 16


def test_scores_are_each_units_best_match_as_defined(family: dict[str, Fingerprint]) -> None:
    """Differential: the batched products (laid out for speed) give, for the observed order and
    a shuffle, exactly the mean over matrices of each candidate unit's highest |correlation|
    with the reference's units, written out matrix by matrix (fails if the maxima run along the
    wrong side)."""
    from verifier.lineage.compare import PreparedPairs

    for candidate, reference in (("tuned", "one"), ("permuted", "two"), ("resized", "one")):
        pairs = PreparedPairs(family[candidate], family[reference])
        order = np.random.default_rng(3).permutation(len(pairs.ia))
        found = pairs.scores([None, order])
        for got, shuffle in zip(found, (None, order), strict=True):
            per_matrix = []
            for k in range(pairs.count):
                cand = pairs.cand[k][:, pairs.mask[k]]
                if shuffle is not None:
                    cand = cand[shuffle]
                best = np.abs(cand.T.astype(np.float64) @ pairs.ref[k]).max(axis=1)
                per_matrix.append(best.mean())
            assert got == pytest.approx(float(np.mean(per_matrix)), abs=1e-5), (candidate, got)
