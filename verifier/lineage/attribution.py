"""Attribution: which recorded bases a model's weights come from, against what its card declares.

Pure: the caller hands in the candidate's fingerprint, the bases its card (or source) declares,
and reference fingerprints from the store; the result is the verified lineage and its findings.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from verifier.lineage.compare import SCREEN_PASS, LineageMatch, compare, screen_many
from verifier.lineage.fingerprint import Fingerprint

NEAR_IDENTICAL = 0.9995
"""Unit score at or above which two models' weights are treated as the same weights."""

RELATED_TESTS = 8
"""Recorded models (neither registered bases nor declared) given the full permutation test at
most: those that passed the screening with the highest excess.

Every comparable reference is screened (`compare.screen`: a small random sample against three
shuffles of it); those that pass get the full test against the null, registered and declared
bases always, other recorded models only when they are among the strongest (docs/lineage.md).
"""


@dataclass(frozen=True)
class Reference:
    """A recorded model whose fingerprint a candidate is compared with.

    Attributes:
        repo_id: `namespace/name` (or the target of a local scan).
        commit: The pinned commit, when the model had one.
        publisher: The namespace that published it, when known.
        fingerprint: Its weight fingerprint.
        registered_base: Whether the organisation registered it as a reference base.
    """

    repo_id: str
    commit: str | None
    publisher: str | None
    fingerprint: Fingerprint
    registered_base: bool = False

    @property
    def label(self) -> str:
        """`repo_id@commit`, or the repo id alone."""
        return f"{self.repo_id}@{self.commit}" if self.commit else self.repo_id


@dataclass(frozen=True)
class OlderReference:
    """A recorded model of the candidate's width whose only fingerprints an older fingerprint
    version made: it is compared with nothing until its weights are fingerprinted again."""

    repo_id: str
    commit: str | None
    #: The newest fingerprint version it was recorded with.
    version: int
    registered_base: bool = False

    @property
    def label(self) -> str:
        """`repo_id@commit`, or the repo id alone."""
        return f"{self.repo_id}@{self.commit}" if self.commit else self.repo_id


@dataclass(frozen=True)
class RecordedReferences:
    """What the store holds for a candidate's width: the references to compare with, and the
    models it could not compare with (fingerprinted by an older version only)."""

    references: tuple[Reference, ...] = ()
    older: tuple[OlderReference, ...] = ()


@dataclass(frozen=True)
class VerifiedBase:
    """A reference the weights were attributed to, with the calibrated evidence."""

    reference: Reference
    match: LineageMatch

    @property
    def near_identical(self) -> bool:
        """Whether the weights are practically the same as the reference's."""
        return self.match.unit_score >= NEAR_IDENTICAL


@dataclass(frozen=True)
class Attribution:
    """Verified lineage of one model.

    Attributes:
        verified_bases: Registered or declared bases the weights are attributed to, strongest
            first.
        related: Other recorded models the weights match (siblings sharing a base, or
            derivatives and copies of the same weights): evidence, not a base.
        declared_matches: True when every declared base that could be checked matches, False
            when some declared base was checked and does not match, None when no declared base
            had a recorded comparable fingerprint.
        undeclared_bases: Verified bases the declaration does not name.
        mismatched_declared: Declared bases checked and not matched.
        unverifiable_declared: Declared bases with no comparable recorded fingerprint.
        compared: How many references were comparable.
    """

    verified_bases: tuple[VerifiedBase, ...]
    related: tuple[VerifiedBase, ...]
    declared_matches: bool | None
    undeclared_bases: tuple[VerifiedBase, ...]
    mismatched_declared: tuple[str, ...]
    unverifiable_declared: tuple[str, ...]
    compared: int


def attribute(
    candidate: Fingerprint,
    *,
    repo_id: str,
    declared: Sequence[str],
    references: Iterable[Reference],
    seed: int | None = None,
) -> Attribution:
    """Compare a candidate with the references and weigh it against the declaration.

    A base is a registered reference base or a declared one: only those are verified bases. A
    match with another recorded model is `related` (two fine-tunes of one base match each
    other; neither is the other's base). References of the same repository (other commits of
    the model itself) are skipped.

    `seed` draws the samples every comparison scores; by default a fresh secret per call, so an
    adversary cannot know which matrices and units will be compared (docs/lineage.md).
    """
    import numpy as np

    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    declared_set = {d.lower() for d in declared}
    others_than_self = [r for r in references if r.repo_id.lower() != repo_id.lower()]
    excesses = screen_many(candidate, [r.fingerprint for r in others_than_self], rng=rng)
    screened = [
        (excess, index, reference)
        for index, (excess, reference) in enumerate(zip(excesses, others_than_self, strict=True))
        if excess is not None
    ]
    screened.sort(key=lambda item: (-item[0], item[1]))
    verified: list[VerifiedBase] = []
    related: list[VerifiedBase] = []
    checked_declared: dict[str, bool] = {}
    others = 0
    for excess, _, reference in screened:
        key = reference.repo_id.lower()
        is_base = reference.registered_base or key in declared_set
        derived = False
        if excess >= SCREEN_PASS and (is_base or others < RELATED_TESTS):
            others += not is_base
            match = compare(candidate, reference.fingerprint, seed=int(rng.integers(1 << 62)))
            derived = match.derived
            if derived:
                (verified if is_base else related).append(VerifiedBase(reference, match))
        if key in declared_set:
            checked_declared[key] = checked_declared.get(key, False) or derived
    verified.sort(key=lambda v: v.match.z, reverse=True)
    related.sort(key=lambda v: v.match.z, reverse=True)
    undeclared = tuple(v for v in verified if v.reference.repo_id.lower() not in declared_set)
    mismatched = tuple(sorted(k for k, ok in checked_declared.items() if not ok))
    unverifiable = tuple(sorted(declared_set - set(checked_declared)))
    declared_matches = None if not checked_declared else not mismatched
    return Attribution(
        verified_bases=tuple(verified),
        related=tuple(related),
        declared_matches=declared_matches,
        undeclared_bases=undeclared,
        mismatched_declared=mismatched,
        unverifiable_declared=unverifiable,
        compared=len(screened),
    )
