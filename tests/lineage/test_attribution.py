"""Attribution against recorded fingerprints and the card's declaration."""

from __future__ import annotations

from verifier.lineage.attribution import Reference, attribute
from verifier.lineage.fingerprint import Fingerprint


def _refs(family: dict[str, Fingerprint]) -> list[Reference]:
    return [
        Reference("acme/one", "a" * 40, "acme", family["one"]),
        Reference("other/two", "b" * 40, "other", family["two"]),
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
