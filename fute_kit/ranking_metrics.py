"""How well one ranking of candidates matches their true scores: NDCG, regret@k, Spearman, top-1, best rank.

Metrics (per target; ``fute_kit.evaluation`` averages them over targets):

- ``ndcg`` and ``ndcg@k``: gain ``2**rel - 1`` with the discount ``1 / log2(position + 1)``. With
  ``relevance="minmax"`` (default) ``rel`` is the true score min-max scaled per target to [0, 1]
  (the worst candidate gains 0, the best 1); with ``"raw"`` the scores are used as given (they must
  be non-negative, for example accuracies in [0, 1]). A target whose scores are all equal has no
  ideal order: its NDCG is undefined (None) and left out of the means.
- ``regret@k``: ``(best - best in the top k) / best x 100`` on the raw scores (undefined when the
  best score is not positive, as for transfer gains that are all losses); ``regret@1`` the same for the
  first-ranked candidate alone.
- ``spearman``: rank correlation (ties in the truth get their mean rank; undefined when the truth is
  constant).
- ``top1``: 1 when the first-ranked candidate has the best true score.
- ``best_rank``: position (1 = first) at which the first truly best candidate is ranked.

Ties in a ranking are broken at random and every metric is its exact expectation over those
tie-breaks (so a constant ranking scores Spearman 0, not "undefined"). The ``random`` baseline is
thus computed exactly: every candidate tied.

Over targets, :func:`bootstrap_interval` gives a percentile bootstrap confidence interval of a mean
(resampling targets), and of a mean paired difference, such as a method's NDCG@k minus random's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import attrs
import numpy as np

from fute_kit.errors import DataError

Relevance = Literal["minmax", "raw"]
METRIC_NAMES: tuple[str, ...] = ("ndcg", "ndcg@k", "regret@1", "regret@k", "spearman", "top1", "best_rank")


@attrs.frozen
class RankingScores:
    """How well one ranking of a target's candidates matches their true scores (None: undefined)."""

    ndcg: float | None
    ndcg_at_k: float | None
    regret_at_k: float | None
    spearman: float | None
    top1: float
    best_rank: float
    regret_at_1: float | None = None

    def to_dict(self, k: int) -> dict[str, float | None]:
        return {
            "ndcg": self.ndcg,
            f"ndcg@{k}": self.ndcg_at_k,
            "regret@1": self.regret_at_1,
            f"regret@{k}": self.regret_at_k,
            "spearman": self.spearman,
            "top1": self.top1,
            "best_rank": self.best_rank,
        }


def _tie_groups(predicted: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by equal predicted score, best group first."""
    values, inverse = np.unique(-predicted, return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in range(len(values))]


def _expected_dcg(groups: Sequence[np.ndarray], gains: np.ndarray, k: int) -> float:
    # Within a tie group every member is equally likely at each of the group's positions, so its
    # expected discount is the mean discount of those positions.
    total, start = 0.0, 0
    for group in groups:
        positions = np.arange(start, start + len(group))
        discounts = np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)
        total += float(gains[group].sum() * discounts.mean())
        start += len(group)
    return total


def _expected_best_in_top(groups: Sequence[np.ndarray], truth: np.ndarray, k: int) -> float:
    best, start = -math.inf, 0
    for group in groups:
        if start + len(group) <= k:
            best = max(best, float(truth[group].max()))
            start += len(group)
            continue
        take = k - start
        if take > 0:
            # r of the m tied members enter the top k at random: the j-th best member (0-based) is the
            # best one taken with probability C(m-1-j, r-1) / C(m, r).
            values = np.sort(truth[group])[::-1]
            m = len(values)
            expected = sum(
                math.comb(m - 1 - j, take - 1) / math.comb(m, take) * max(best, float(v)) for j, v in enumerate(values)
            )
            return float(expected)
        break
    return best


def _midranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None when either side is constant."""
    ra, rb = _midranks(np.asarray(a, dtype=np.float64)), _midranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return None if denominator == 0 else float(ra @ rb) / denominator


def _tie_broken_spearman(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """Spearman's rho averaged over random orders of tied predictions (ties in the truth keep mid-ranks).

    A random order of a tie group has the group's mid-rank as its mean and the variance of a full
    ranking 1..n, so the expectation is cov(mid-ranks, truth ranks) / (sd(1..n) sd(truth ranks)).
    """
    ranks, true_ranks = _midranks(predicted), _midranks(truth)
    centred = true_ranks - true_ranks.mean()
    positions = np.arange(1, len(predicted) + 1) - (len(predicted) + 1) / 2.0
    denominator = math.sqrt(float(positions @ positions) * float(centred @ centred))
    return None if denominator == 0 else float((ranks - ranks.mean()) @ centred) / denominator


def relevance_of(truth: np.ndarray, relevance: Relevance = "minmax") -> np.ndarray:
    if relevance == "raw":
        if np.any(truth < 0):
            raise DataError("relevance 'raw' needs non-negative true scores; use relevance 'minmax' (the default)")
        return truth
    if relevance != "minmax":
        raise DataError(f"unknown relevance {relevance!r}; choose 'minmax' or 'raw'")
    spread = float(truth.max() - truth.min())
    return np.zeros_like(truth) if spread == 0 else (truth - truth.min()) / spread


def ranking_scores(
    predicted: Sequence[float] | np.ndarray,
    truth: Sequence[float] | np.ndarray,
    k: int = 3,
    relevance: Relevance = "minmax",
) -> RankingScores:
    """Compare predicted scores (higher = ranked first) with true scores of the same candidates.

    Ties in ``predicted`` are broken at random and each metric is its expectation over the tie-breaks.
    """
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1 or len(pred) == 0:
        raise DataError(f"ranking_scores needs two equal-length score vectors, got {pred.shape} and {true.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(true))):
        raise DataError("ranking_scores: scores must be finite numbers")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    n = len(pred)
    groups = _tie_groups(pred)
    gains = 2.0 ** relevance_of(true, relevance) - 1.0
    ideal = [np.array([i]) for i in np.argsort(-gains, kind="stable")]

    def ndcg(cut: int) -> float | None:
        best = _expected_dcg(ideal, gains, cut)
        return None if best <= 0 else _expected_dcg(groups, gains, cut) / best

    best_true = float(true.max())
    in_top = _expected_best_in_top(groups, true, min(k, n))
    regret = None if best_true <= 0 else (best_true - in_top) / best_true * 100.0
    first_taken = _expected_best_in_top(groups, true, 1)
    regret1 = None if best_true <= 0 else (best_true - first_taken) / best_true * 100.0
    is_best = np.isclose(true, best_true, rtol=0, atol=1e-12)
    first = groups[0]
    top1 = float(is_best[first].mean())
    start = 0
    for group in groups:
        hits = int(is_best[group].sum())
        if hits:
            # The first of b marked items among m shuffled ones sits at (m + 1) / (b + 1) on average.
            best_rank = start + (len(group) + 1) / (hits + 1)
            break
        start += len(group)
    rho = _tie_broken_spearman(pred, true)
    return RankingScores(ndcg(n), ndcg(min(k, n)), regret, rho, top1, float(best_rank), regret1)


def random_scores(truth: Sequence[float] | np.ndarray, k: int = 3, relevance: Relevance = "minmax") -> RankingScores:
    """The exact expected scores of a uniformly random order: every candidate tied."""
    return ranking_scores(np.zeros(len(truth)), truth, k, relevance)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of per-target values (targets resampled with replacement).

    For a paired comparison pass the per-target differences (method minus baseline on the same targets).
    None with fewer than two values: one target says nothing about the spread.
    """
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1 or not np.all(np.isfinite(data)):
        raise DataError("bootstrap_interval needs a 1-d vector of finite numbers")
    if not 0 < level < 1 or resamples < 1:
        raise DataError(f"bootstrap_interval: level must be in (0, 1) and resamples positive; got {level}, {resamples}")
    if len(data) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(resamples, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
