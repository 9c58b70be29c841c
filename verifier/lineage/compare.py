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

from verifier.lineage.fingerprint import Fingerprint

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PERMUTATIONS = 19
"""Anchor shuffles drawn for the null distribution."""

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


def _renormalise(profiles: NDArray[np.float32]) -> NDArray[np.float64]:
    import numpy as np

    centred = profiles.astype(np.float64) - profiles.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0, keepdims=True)
    norms[norms == 0] = 1.0
    return np.asarray(centred / norms, dtype=np.float64)


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


def compare(
    candidate: Fingerprint,
    reference: Fingerprint,
    *,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> LineageMatch:
    """Compare a candidate's fingerprint with a reference's (pure; deterministic for a seed)."""
    import numpy as np

    if candidate.version != reference.version:
        return LineageMatch(False, "fingerprint versions differ")
    if candidate.hidden_size != reference.hidden_size:
        return LineageMatch(False, "hidden sizes differ")
    ia, ib = _shared(reference, candidate)
    if len(ia) < MIN_SHARED_ANCHORS:
        return LineageMatch(False, "too few shared anchor tokens")
    by_name = {m.name: m for m in reference.matrices}
    pairs = [
        (_renormalise(by_name[m.name].profiles[ia]), _renormalise(m.profiles[ib]))
        for m in candidate.matrices
        if m.name in by_name
    ]
    if not pairs:
        return LineageMatch(False, "no matrix in common")

    def score(order: NDArray[np.int64] | None) -> float:
        total = 0.0
        for ref, cand in pairs:
            shuffled = ref if order is None else ref[order]
            total += float(np.abs(shuffled.T @ cand).max(axis=0).mean())
        return total / len(pairs)

    observed = score(None)
    rng = np.random.default_rng(seed)
    null = np.array([score(rng.permutation(len(ia))) for _ in range(permutations)])
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
        matrices=len(pairs),
    )
