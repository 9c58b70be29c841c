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
from collections.abc import Sequence
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


def _unit_sample(
    widths: Sequence[int], units: int, rng: np.random.Generator
) -> list[NDArray[np.int64] | None]:
    """At most `units` of each matrix's candidate units, drawn in one call (one draw per matrix
    was a third of preparing a comparison); None where a matrix holds no more than that."""
    import numpy as np

    if not widths or max(widths) <= units:
        return [None] * len(widths)
    # Each unit gets a random key (padding gets infinity); the `units` lowest are the sample.
    keys = rng.random((len(widths), max(widths)))
    keys[np.arange(keys.shape[1]) >= np.array(widths)[:, None]] = np.inf
    drawn = np.sort(np.argpartition(keys, units, axis=1)[:, :units], axis=1)
    return [drawn[k] if w > units else None for k, w in enumerate(widths)]


class PreparedPairs:
    """The matrices two fingerprints share, stacked for batched products.

    `cand` and `ref` are (matrices, anchors, units) float32 arrays of centred, unit-norm
    profiles over the shared anchors, as recorded (no transpose; a shuffle of anchors moves
    whole rows); matrices with fewer units are padded with zero profiles, and `mask` marks the
    candidate's real units.

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
        if rng is not None and units is not None:
            drawn = _unit_sample([c.shape[1] for _, c in pairs], units, rng)
            pairs = [
                (r, c if d is None else c[:, d]) for (r, c), d in zip(pairs, drawn, strict=True)
            ]
        self.count = len(pairs)
        ref_width = max((r.shape[1] for r, _ in pairs), default=0)
        cand_width = max((c.shape[1] for _, c in pairs), default=0)
        # Fingerprints made with one key over vocabularies of one size share every anchor, in
        # the same (ascending) order: their profiles are already centred and of unit length
        # over exactly these anchors, so neither a gather nor a second normalisation is needed.
        every_anchor = len(ia) == len(reference.anchor_ids) == len(candidate.anchor_ids)
        self.ref = np.zeros((len(pairs), len(ia), ref_width), dtype=np.float32)
        self.cand = np.zeros((len(pairs), len(ia), cand_width), dtype=np.float32)
        self.mask = np.zeros((len(pairs), cand_width), dtype=bool)
        for k, (r, c) in enumerate(pairs):
            # Recorded profiles are float16: converted here, for the matrices used only.
            self.ref[k, :, : r.shape[1]] = r if every_anchor else r[ia]
            self.cand[k, :, : c.shape[1]] = c if every_anchor else c[ib]
            self.mask[k, : c.shape[1]] = True
        if not every_anchor:
            # Over the shared anchors only; all matrices at once.
            _normalise_columns(self.ref, axis=1)
            _normalise_columns(self.cand, axis=1)
        self.units = self.mask.sum(axis=1)
        self._shuffled: NDArray[np.float32] | None = None
        self._products: NDArray[np.float32] | None = None

    def score(self, order: NDArray[np.int64] | None = None) -> float:
        """Mean over matrices of the mean best-match |correlation|, with the anchors of one
        side reordered by `order` (a shuffle of the null)."""
        return float(self.scores([order])[0])

    def scores(self, orders: Sequence[NDArray[np.int64] | None]) -> NDArray[np.float64]:
        """`score` for several orders (None: as recorded), one batched product per order.

        The products go into buffers kept between calls: a fresh array of a few megabytes
        for every product (the memory mapped and faulted in anew each time) cost more than
        the products themselves.
        """
        import numpy as np

        if self._shuffled is None or self._products is None:
            self._shuffled = np.empty_like(self.cand)
            self._products = np.empty(
                (self.count, self.ref.shape[2], self.cand.shape[2]), dtype=np.float32
            )
        shuffled, products = self._shuffled, self._products
        best = np.empty((self.count, len(orders), self.cand.shape[2]), dtype=np.float32)
        for i, order in enumerate(orders):
            # Reordering the candidate's anchors by a uniformly random permutation breaks the
            # correspondence exactly as reordering the reference's would (the inverse of a
            # uniform permutation is uniform), and moves the smaller array (whole rows).
            if order is not None:
                np.take(self.cand, order, axis=1, out=shuffled)
            # (matrices, reference units, candidate units): every correlation of every matrix,
            # the reference's side read transposed (no copy). Each candidate unit's maximum is
            # then taken across rows, an elementwise maximum of whole rows: three times faster
            # than a maximum along each short row (the layout before), and the same values.
            side = self.cand if order is None else shuffled
            np.matmul(self.ref.transpose(0, 2, 1), side, out=products)
            np.abs(products, out=products)
            products.max(axis=1, out=best[:, i, :])
        per_matrix = (best * self.mask[:, None, :]).sum(axis=2) / self.units[:, None]
        return np.asarray(per_matrix.mean(axis=0), dtype=np.float64)


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


SCREEN_BATCH = 16
"""References screened in one product at most (memory: about a megabyte each)."""


def screen(
    candidate: Fingerprint, reference: Fingerprint, *, rng: np.random.Generator
) -> float | None:
    """A cheap first look at one reference (`screen_many`)."""
    return screen_many(candidate, [reference], rng=rng)[0]


def screen_many(
    candidate: Fingerprint, references: Sequence[Fingerprint], *, rng: np.random.Generator
) -> list[float | None]:
    """A cheap first look: how far a small random sample scores above its own shuffles.

    Scores at most `SCREEN_MATRICES` shared matrices and `SCREEN_UNITS` candidate units in each,
    against `SCREEN_DRAWS` anchor shuffles of that sample, and returns for each reference the
    observed score minus the highest shuffled one (None when the two do not compare). A
    reference below `SCREEN_PASS` cannot be a base (`attribution.py` gives it no full test):
    unrelated weights score at the level of their shuffles, bases far above (docs/lineage.md
    gives both).

    References that share the same matrices with the candidate over the same anchors (every
    reference of one architecture and vocabulary in one store) are screened together, up to
    `SCREEN_BATCH` in one product, with one sample of the candidate's matrices and units and
    one set of shuffles: each reference's excess is still that of a random secret sample, and
    the per-reference products of small matrices were most of a scan's comparison time.
    """
    excess: list[float | None] = [None] * len(references)
    groups: dict[tuple[tuple[int, ...], tuple[str, ...]], list[int]] = {}
    names = candidate.by_canonical_name
    for index, reference in enumerate(references):
        if _not_comparable(candidate, reference):
            continue
        shared = tuple(n for n in names if n in reference.by_canonical_name)
        if shared:
            groups.setdefault((reference.anchor_ids, shared), []).append(index)
    for (anchor_ids, shared), members in groups.items():
        if anchor_ids != candidate.anchor_ids:
            for index in members:  # other anchors: gathered and normalised pair by pair
                excess[index] = _screen_pair(candidate, references[index], rng)
            continue
        for start in range(0, len(members), SCREEN_BATCH):
            batch = members[start : start + SCREEN_BATCH]
            found = _screen_batch(candidate, [references[i] for i in batch], shared, rng)
            for index, value in zip(batch, found, strict=True):
                excess[index] = value
    return excess


def _screen_pair(
    candidate: Fingerprint, reference: Fingerprint, rng: np.random.Generator
) -> float | None:
    pairs = PreparedPairs(
        candidate, reference, rng=rng, matrices=SCREEN_MATRICES, units=SCREEN_UNITS
    )
    if pairs.count == 0:
        return None
    orders = [None, *(rng.permutation(len(pairs.ia)) for _ in range(SCREEN_DRAWS))]
    scores = pairs.scores(orders)
    return float(scores[0] - scores[1:].max())


def _screen_batch(
    candidate: Fingerprint,
    references: Sequence[Fingerprint],
    shared: tuple[str, ...],
    rng: np.random.Generator,
) -> list[float]:
    """`screen_many` for references holding `shared` over the candidate's own anchors."""
    import numpy as np

    chosen = list(shared)
    if len(chosen) > SCREEN_MATRICES:
        keep = np.sort(rng.choice(len(chosen), size=SCREEN_MATRICES, replace=False))
        chosen = [chosen[i] for i in keep]
    profiles = [candidate.by_canonical_name[n].profiles for n in chosen]
    drawn = _unit_sample([p.shape[1] for p in profiles], SCREEN_UNITS, rng)
    sampled = [p if d is None else p[:, d] for p, d in zip(profiles, drawn, strict=True)]
    anchors = len(candidate.anchor_ids)
    cand_width = max(p.shape[1] for p in sampled)
    cand_t = np.zeros((len(chosen), cand_width, anchors), dtype=np.float32)
    mask = np.zeros((len(chosen), cand_width), dtype=bool)
    for k, p in enumerate(sampled):
        cand_t[k, : p.shape[1], :] = p.T
        mask[k, : p.shape[1]] = True
    orders = [None, *(rng.permutation(anchors) for _ in range(SCREEN_DRAWS))]
    # Every reference's units side by side, padded to one width with zero profiles (a zero
    # correlation never raises a maximum of absolute values); one matrix at a time, in buffers
    # reused for every matrix (fresh arrays of megabytes cost more than the products).
    width = max(r.by_canonical_name[n].profiles.shape[1] for r in references for n in chosen)
    stacked = np.empty((len(orders) * cand_width, anchors), dtype=np.float32)
    ref = np.empty((anchors, len(references) * width), dtype=np.float32)
    products = np.empty((len(references) * width, len(orders) * cand_width), dtype=np.float32)
    # (matrices, references, orders x candidate units): each unit's best match per reference.
    best = np.empty((len(chosen), len(references), len(orders) * cand_width), dtype=np.float32)
    for k, name in enumerate(chosen):
        for i, order in enumerate(orders):
            block = stacked[i * cand_width : (i + 1) * cand_width]
            if order is None:
                block[...] = cand_t[k]
            else:
                np.take(cand_t[k], order, axis=1, out=block)
        for j, reference in enumerate(references):
            r = reference.by_canonical_name[name].profiles
            ref[:, j * width : j * width + r.shape[1]] = r
            ref[:, j * width + r.shape[1] : (j + 1) * width] = 0.0
        # (references x their units, orders x candidate units), both sides read transposed
        # (no copy); each candidate unit's maximum over a reference's units is an elementwise
        # maximum of whole rows, three times faster than a maximum along each short row.
        np.matmul(ref.T, stacked.T, out=products)
        np.abs(products, out=products)
        products.reshape(len(references), width, len(stacked)).max(axis=1, out=best[k])
    # Back to (matrices, orders x candidate units, references), so the sums below add in the
    # order they always did (the same excess to the last bit).
    best = np.ascontiguousarray(best.transpose(0, 2, 1))
    best4 = best.reshape(len(chosen), len(orders), cand_width, len(references))
    per_matrix = (best4 * mask[:, None, :, None]).sum(axis=2) / mask.sum(axis=1)[:, None, None]
    scores = per_matrix.mean(axis=0)  # (orders, references)
    return [float(v) for v in scores[0] - scores[1:].max(axis=0)]


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
    # The draws in three products (the observed score with the first four shuffles, then up
    # to `STRONG_DRAWS`, then the rest), each ending where the sequential test may stop.
    stops = sorted({min(permutations, EARLY_DRAWS), min(permutations, STRONG_DRAWS), permutations})
    observed = 0.0
    draws: list[float] = []
    for stop in stops:
        orders = [rng.permutation(len(ia)) for _ in range(stop - len(draws))]
        scores = pairs.scores([None, *orders] if not draws else orders)
        if not draws:
            observed, scores = float(scores[0]), scores[1:]
        draws.extend(float(v) for v in scores)
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
