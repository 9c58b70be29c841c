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

Both statistics are means, so a random sample of matrices and of the candidate's units
estimates them without bias. `screen` scores a small sample against three shuffles to set
aside unrelated references cheaply; `compare` runs the full test on a bounded sample. Which
matrices and units are drawn comes from a seed that a scan keeps secret (`attribution.py`).
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

EARLY_DRAWS = 4
"""Shuffles after which a reference scoring less than half the margin above every one of
them stops (it cannot be attributed; the null reported then has these draws only)."""

TEST_MATRICES = 32
"""Shared matrices scored in the full test at most (a secret random sample past it)."""

TEST_UNITS = 64
"""Candidate units scored per matrix in the full test at most (a secret random sample past it;
the reference keeps every unit it recorded, so each sampled unit can find its counterpart)."""

STRONG_DRAWS = 9
"""Shuffles after which a reference passing both thresholds twice over (z at least 16, effect
at least 0.20) stops: its null then has these draws only, and its z-score is estimated from
them (docs/lineage.md)."""

SCREEN_MATRICES = 16
"""Shared matrices a screening scores at most (`screen`)."""

SCREEN_UNITS = 32
"""Candidate units per matrix a screening scores at most."""

SCREEN_DRAWS = 3
"""Anchor shuffles a screening scores its sample against."""

SCREEN_PASS = 0.05
"""Excess over the highest screening shuffle below which a reference cannot be a base: half the
margin a base needs (`VERIFIED_MARGIN`)."""

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


def _normalise_columns(stack: NDArray[np.float32], *, axis: int) -> None:
    """Centre each profile of each matrix over the anchors (`axis`) and scale it to unit
    length, in place (zero profiles, the padding, stay zero)."""
    import numpy as np

    stack -= stack.mean(axis=axis, keepdims=True)
    norms = np.sqrt(np.square(stack).sum(axis=axis, keepdims=True))
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

    `ref_t` is a (matrices, reference units, anchors) and `cand` a (matrices, anchors, candidate
    units) float32 array of centred, unit-norm profiles over the shared anchors; matrices with
    fewer units are padded with zero profiles, and `mask` marks the candidate's real units.

    With `rng`, only a random sample is stacked: at most `matrices` of the shared matrices and
    at most `units` of the candidate's units in each (the reference keeps all of its units, so
    each sampled unit can still find its counterpart). A sample's score estimates the full one
    without bias: it is a mean over matrices and units, and which ones enter it is drawn from
    `rng`, a per-scan secret in a scan (`attribution.py`).
    """

    def __init__(
        self,
        candidate: Fingerprint,
        reference: Fingerprint,
        *,
        rng: np.random.Generator | None = None,
        matrices: int | None = None,
        units: int | None = None,
    ) -> None:
        import numpy as np

        ia, ib = _shared(reference, candidate)
        self.ia, self.ib = ia, ib
        by_name = reference.by_canonical_name
        pairs = [
            (by_name[name].profiles, m.profiles)
            for name, m in candidate.by_canonical_name.items()
            if name in by_name
        ]
        if rng is not None and matrices is not None and len(pairs) > matrices:
            keep = np.sort(rng.choice(len(pairs), size=matrices, replace=False))
            pairs = [pairs[i] for i in keep]
        if rng is not None and units is not None and pairs:
            # One draw for every matrix: each unit gets a random key (padding gets infinity),
            # and the `units` lowest keys of a matrix are its sample.
            widths = np.array([c.shape[1] for _, c in pairs])
            keys = rng.random((len(pairs), int(widths.max())))
            keys[np.arange(keys.shape[1]) >= widths[:, None]] = np.inf
            if keys.shape[1] > units:
                drawn = np.sort(np.argpartition(keys, units, axis=1)[:, :units], axis=1)
                pairs = [
                    (r, c[:, drawn[k]]) if c.shape[1] > units else (r, c)
                    for k, (r, c) in enumerate(pairs)
                ]
        self.count = len(pairs)
        ref_width = max((r.shape[1] for r, _ in pairs), default=0)
        cand_width = max((c.shape[1] for _, c in pairs), default=0)
        # Fingerprints made with one key over vocabularies of one size share every anchor, in
        # the same (ascending) order: their profiles are already centred and of unit length
        # over exactly these anchors, so neither a gather nor a second normalisation is needed.
        every_anchor = len(ia) == len(reference.anchor_ids) == len(candidate.anchor_ids)
        ref = np.zeros((len(pairs), ref_width, len(ia)), dtype=np.float32)
        self.cand = np.zeros((len(pairs), len(ia), cand_width), dtype=np.float32)
        self.mask = np.zeros((len(pairs), cand_width), dtype=bool)
        for k, (r, c) in enumerate(pairs):
            # Recorded profiles are float16: converted here, for the matrices used only.
            ref[k, : r.shape[1], :] = (r if every_anchor else r[ia]).T
            self.cand[k, :, : c.shape[1]] = c if every_anchor else c[ib]
            self.mask[k, : c.shape[1]] = True
        if not every_anchor:
            # Over the shared anchors only; all matrices at once (one call per matrix was a
            # third of the time of a comparison).
            _normalise_columns(ref, axis=2)
            _normalise_columns(self.cand, axis=1)
        #: (matrices, reference units, anchors): the left side of every product, laid out once.
        self.ref_t = ref
        self.units = self.mask.sum(axis=1)

    def score(self, order: NDArray[np.int64] | None = None) -> float:
        """Mean over matrices of the mean best-match |correlation|, with the anchors of one
        side reordered by `order` (a shuffle of the null)."""
        import numpy as np

        # Reordering the candidate's anchor rows by a uniformly random permutation breaks the
        # correspondence exactly as reordering the reference's would (the inverse of a uniform
        # permutation is uniform), and moves the smaller array.
        cand = self.cand if order is None else self.cand[:, order, :]
        # (matrices, ref units, cand units): every correlation of every matrix in one product.
        correlations = np.matmul(self.ref_t, cand)
        np.abs(correlations, out=correlations)
        best = np.where(self.mask, correlations.max(axis=1), 0.0).sum(axis=1) / self.units
        return float(best.mean())


def _not_comparable(candidate: Fingerprint, reference: Fingerprint) -> str:
    """Why the two fingerprints cannot be compared at all, or empty."""
    if candidate.version != reference.version:
        return "fingerprint versions differ"
    if candidate.key_id != reference.key_id:
        # Anchors and matrices chosen by different secrets: a few ids may coincide, but the
        # fingerprints were never meant to be compared (another store's).
        return "fingerprints made with different lineage keys"
    if candidate.hidden_size != reference.hidden_size:
        return "hidden sizes differ"
    if len(set(candidate.anchor_ids) & set(reference.anchor_ids)) < MIN_SHARED_ANCHORS:
        return "too few shared anchor tokens"
    return ""


def screen(
    candidate: Fingerprint, reference: Fingerprint, *, rng: np.random.Generator
) -> float | None:
    """A cheap first look: how far a small random sample scores above its own shuffles.

    Scores at most `SCREEN_MATRICES` shared matrices and `SCREEN_UNITS` candidate units in each,
    against `SCREEN_DRAWS` anchor shuffles of that sample, and returns the observed score minus
    the highest shuffled one (None when the two do not compare). A reference below
    `SCREEN_PASS` cannot be a base (`attribution.py` gives it no full test): unrelated weights
    score at the level of their shuffles, bases far above (docs/lineage.md gives both).
    """
    if _not_comparable(candidate, reference):
        return None
    pairs = PreparedPairs(
        candidate, reference, rng=rng, matrices=SCREEN_MATRICES, units=SCREEN_UNITS
    )
    if pairs.count == 0:
        return None
    observed = pairs.score()
    shuffled = max(pairs.score(rng.permutation(len(pairs.ia))) for _ in range(SCREEN_DRAWS))
    return observed - shuffled


def _overwhelming(observed: float, draws: list[float]) -> bool:
    """Whether a score already passes both thresholds twice over: more shuffles would only
    refine a z-score far past `VERIFIED_Z` (the other end of the sequential test)."""
    import statistics

    effect = observed - statistics.fmean(draws)
    spread = max(statistics.stdev(draws), 1e-6)
    return effect >= 2 * VERIFIED_MARGIN and effect / spread >= 2 * VERIFIED_Z


def compare(
    candidate: Fingerprint,
    reference: Fingerprint,
    *,
    permutations: int = PERMUTATIONS,
    seed: int | None = None,
    matrices: int | None = TEST_MATRICES,
    units: int | None = TEST_UNITS,
) -> LineageMatch:
    """Compare a candidate's fingerprint with a reference's (pure; deterministic for a seed).

    The test scores a random sample of at most `matrices` shared matrices and `units` candidate
    units in each (None: all), drawn with `seed` like the anchor shuffles; a scan passes a
    per-scan secret (`attribution.py`), so which weights are compared cannot be known in advance.
    With no seed, the draw is from the operating system's entropy.
    """
    import numpy as np

    reason = _not_comparable(candidate, reference)
    if reason:
        return LineageMatch(False, reason)
    rng = np.random.default_rng(seed)
    pairs = PreparedPairs(candidate, reference, rng=rng, matrices=matrices, units=units)
    ia, ib = pairs.ia, pairs.ib
    if pairs.count == 0:
        return LineageMatch(False, "no matrix in common")
    observed = pairs.score()
    draws: list[float] = []
    for _ in range(permutations):
        draws.append(pairs.score(rng.permutation(len(ia))))
        if len(draws) == EARLY_DRAWS and observed - max(draws) < VERIFIED_MARGIN / 2:
            # Sequential test: unrelated weights score at the null's level, far below the
            # margin a base needs; more draws could not make them a base.
            break
        if len(draws) == STRONG_DRAWS and _overwhelming(observed, draws):
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
