"""Compare two weight fingerprints: how strongly one set of weights descends from another.

Two statistics, both blind to the order of units:

- `gram_correlation`: correlation of the embedding Gram matrices over the shared anchor tokens.
- `unit_score`: for every matrix both fingerprints profiled (same name), each unit of the
  candidate is matched to its most correlated unit of the reference (absolute correlation over
  the anchors); the score is the mean of those best matches, averaged over matrices.

Calibration is a permutation test on the one index that cannot be permuted for free: the anchor
tokens. Shuffling the reference's anchor rows (the same shuffle for every matrix) breaks any
real correspondence while keeping each model's own structure, so the shuffled scores are the
null distribution of "unrelated weights of this shape". The result reports the observed score,
that null's mean and spread, the z-score and a one-sided p-value from a normal approximation of
the null (an empirical p-value cannot go below 1/(permutations+1)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from verifier.lineage.fingerprint import Fingerprint, canonical_name

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PERMUTATIONS = 19
"""Anchor shuffles drawn for the null distribution."""

EARLY_DRAWS = 4
"""Shuffles after which a reference scoring less than half the margin above every one of
them stops (it cannot be attributed; the null reported then has these draws only)."""

MIN_SHARED_ANCHORS = 16
"""Fewer shared anchor tokens than this: the models are not comparable."""

VERIFIED_Z = 8.0
"""z-score at or above which a reference is attributed as a base (see docs/lineage.md)."""

VERIFIED_MARGIN = 0.10
"""...and the unit score must also exceed the null mean by this much (an effect size)."""


@dataclass(frozen=True)
class LineageMatch:
    """How one fingerprint compares with a reference.

    Attributes:
        comparable: False when architecture or anchors do not allow a comparison.
        reason: Why not comparable, or empty.
        gram_correlation: Embedding Gram correlation over shared anchors (-1..1).
        unit_score: Mean best-match unit correlation (0..1).
        null_mean: Mean unit score under anchor shuffles.
        null_sd: Standard deviation of that null.
        z: (unit_score - null_mean) / null_sd.
        p_value: One-sided p-value, normal approximation of the null.
        matrices: Matrices compared.
    """

    comparable: bool
    reason: str = ""
    gram_correlation: float = 0.0
    unit_score: float = 0.0
    null_mean: float = 0.0
    null_sd: float = 0.0
    z: float = 0.0
    p_value: float = 1.0
    matrices: int = 0

    @property
    def derived(self) -> bool:
        """Whether the weights are attributed to the reference (calibrated thresholds)."""
        return (
            self.comparable
            and self.z >= VERIFIED_Z
            and self.unit_score - self.null_mean >= VERIFIED_MARGIN
        )


def _shared(a: Fingerprint, b: Fingerprint) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    import numpy as np

    common = sorted(set(a.anchor_ids) & set(b.anchor_ids))
    index_a = {t: i for i, t in enumerate(a.anchor_ids)}
    index_b = {t: i for i, t in enumerate(b.anchor_ids)}
    return (
        np.array([index_a[t] for t in common], dtype=np.int64),
        np.array([index_b[t] for t in common], dtype=np.int64),
    )


def _normalise_columns(stack: NDArray[np.float32]) -> None:
    """Centre each column of each matrix over the anchors and scale it to unit length, in place
    (zero columns, the padding, stay zero)."""
    import numpy as np

    stack -= stack.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("kau,kau->ku", stack, stack))[:, None, :]
    norms[norms == 0] = 1.0
    stack /= norms


def _gram_correlation(
    a: Fingerprint, b: Fingerprint, ia: NDArray[np.int64], ib: NDArray[np.int64]
) -> float:
    import numpy as np

    ga = a.gram[np.ix_(ia, ia)].astype(np.float64)
    gb = b.gram[np.ix_(ib, ib)].astype(np.float64)
    upper = np.triu_indices(len(ia), k=1)
    x, y = ga[upper], gb[upper]
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


class PreparedPairs:
    """The matrices two fingerprints share, stacked for batched products.

    `ref` and `cand` are (matrices, anchors, units) float32 arrays of centred, unit-norm
    profiles over the shared anchors; matrices with fewer units are padded with zero columns,
    and `mask` marks the candidate's real units.
    """

    def __init__(self, candidate: Fingerprint, reference: Fingerprint) -> None:
        import numpy as np

        ia, ib = _shared(reference, candidate)
        self.ia, self.ib = ia, ib
        by_name = {canonical_name(m.name): m for m in reference.matrices}
        pairs = [
            (by_name[name].profiles, m.profiles)
            for m in candidate.matrices
            if (name := canonical_name(m.name)) in by_name
        ]
        self.count = len(pairs)
        width = max((max(r.shape[1], c.shape[1]) for r, c in pairs), default=0)
        self.ref = np.zeros((len(pairs), len(ia), width), dtype=np.float32)
        self.cand = np.zeros((len(pairs), len(ia), width), dtype=np.float32)
        self.mask = np.zeros((len(pairs), width), dtype=bool)
        for k, (r, c) in enumerate(pairs):
            self.ref[k, :, : r.shape[1]] = r[ia]
            self.cand[k, :, : c.shape[1]] = c[ib]
            self.mask[k, : c.shape[1]] = True
        # Over the shared anchors only; all matrices at once (one call per matrix was a third of
        # the time of a comparison).
        _normalise_columns(self.ref)
        _normalise_columns(self.cand)
        self.units = self.mask.sum(axis=1)

    def score(self, order: NDArray[np.int64] | None = None) -> float:
        """Mean over matrices of the mean best-match |correlation| (reference rows reordered)."""
        import numpy as np

        ref = self.ref if order is None else self.ref[:, order, :]
        # (matrices, ref units, cand units): every correlation of every matrix in one product.
        correlations = np.abs(np.matmul(ref.transpose(0, 2, 1), self.cand))
        best = np.where(self.mask, correlations.max(axis=1), 0.0).sum(axis=1) / self.units
        return float(best.mean())


def pair(candidate: Fingerprint, reference: Fingerprint) -> PreparedPairs | None:
    """The two fingerprints' shared matrices, ready to score; None when they do not compare.

    `quick_score` and `compare` both take it, so a reference that gets the quick score and then
    the full test is prepared once.
    """
    if candidate.version != reference.version or candidate.hidden_size != reference.hidden_size:
        return None
    pairs = PreparedPairs(candidate, reference)
    if len(pairs.ia) < MIN_SHARED_ANCHORS or pairs.count == 0:
        return None
    return pairs


def quick_score(
    candidate: Fingerprint, reference: Fingerprint, *, pairs: PreparedPairs | None = None
) -> float | None:
    """The observed unit score alone (no null): None when the two do not compare.

    Used to choose which references get the full permutation test (`attribution.py`).
    """
    pairs = pairs or pair(candidate, reference)
    return None if pairs is None else pairs.score()


def compare(
    candidate: Fingerprint,
    reference: Fingerprint,
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
    pairs: PreparedPairs | None = None,
    observed: float | None = None,
) -> LineageMatch:
    """Compare a candidate's fingerprint with a reference's (pure; deterministic for a seed).

    `pairs` and `observed` are what `pair` and `quick_score` already gave for these two.
    """
    import numpy as np

    if candidate.version != reference.version:
        return LineageMatch(False, "fingerprint versions differ")
    if candidate.hidden_size != reference.hidden_size:
        return LineageMatch(False, "hidden sizes differ")
    pairs = pairs or PreparedPairs(candidate, reference)
    ia, ib = pairs.ia, pairs.ib
    if len(ia) < MIN_SHARED_ANCHORS:
        return LineageMatch(False, "too few shared anchor tokens")
    if pairs.count == 0:
        return LineageMatch(False, "no matrix in common")
    observed = pairs.score() if observed is None else observed
    rng = np.random.default_rng(seed)
    draws: list[float] = []
    for _ in range(permutations):
        draws.append(pairs.score(rng.permutation(len(ia))))
        if len(draws) == EARLY_DRAWS and observed - max(draws) < VERIFIED_MARGIN / 2:
            # Sequential test: unrelated weights score at the null's level, far below the
            # margin a base needs; more draws could not make them a base.
            break
    null = np.array(draws)
    mean = float(null.mean())
    sd = max(float(null.std(ddof=1)), 1e-6)
    z = (observed - mean) / sd
    return LineageMatch(
        comparable=True,
        gram_correlation=_gram_correlation(reference, candidate, ia, ib),
        unit_score=observed,
        null_mean=mean,
        null_sd=sd,
        z=z,
        p_value=0.5 * math.erfc(z / math.sqrt(2.0)),
        matrices=pairs.count,
    )
