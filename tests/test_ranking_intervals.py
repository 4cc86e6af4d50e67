"""regret@1 and the bootstrap intervals over targets that ``fute evaluate`` reports, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from fute_kit.errors import DataError
from fute_kit.evaluation import Evaluation, TargetEvaluation
from fute_kit.ranking_metrics import bootstrap_interval, random_scores, ranking_scores


def test_regret_at_1_hand_computed() -> None:
    truth = [0.2, 0.8, 0.5]
    # the first-ranked candidate scores 0.2 of a best 0.8
    assert ranking_scores([3, 2, 1], truth).regret_at_1 == pytest.approx((0.8 - 0.2) / 0.8 * 100)
    assert ranking_scores([1, 3, 2], truth).regret_at_1 == 0.0
    # random: the first is any of the three, 0.5 on average
    assert random_scores(truth).regret_at_1 == pytest.approx((0.8 - 0.5) / 0.8 * 100)
    assert ranking_scores([1, 2], [-0.1, -0.2]).regret_at_1 is None  # all losses: undefined, like regret@k
    assert "regret@1" in ranking_scores([1, 2], [0.1, 0.2]).to_dict(3)


def test_bootstrap_interval_hand_computed() -> None:
    assert bootstrap_interval([0.4, 0.4, 0.4]) == pytest.approx((0.4, 0.4))
    # two targets: resampled means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> the 2.5% and 97.5% quantiles
    assert bootstrap_interval([0.0, 1.0], resamples=4000) == (0.0, 1.0)
    low, high = bootstrap_interval(np.linspace(0, 1, 50))
    assert low < 0.5 < high and high - low < 0.3  # about mean +- 2 * 0.29 / sqrt(50)
    assert bootstrap_interval([1.0]) is None
    assert bootstrap_interval([0.1, 0.9], seed=3) == bootstrap_interval([0.1, 0.9], seed=3)
    with pytest.raises(DataError, match="finite"):
        bootstrap_interval([0.1, float("nan")])


def test_evaluation_intervals_pair_each_target_with_random() -> None:
    targets = []
    for i in range(6):
        truth = np.array([0.1, 0.2, 0.3 + 0.01 * i, 0.05])
        best_first = truth.argsort().argsort()  # a perfect ranking on every target
        results = {"embedding": ranking_scores(best_first, truth), "random": random_scores(truth)}
        targets.append(TargetEvaluation(f"t{i}", ("a", "b", "c", "d"), tuple(truth), tuple(best_first), results))
    evaluation = Evaluation("s", "truth.csv", 3, "minmax", {}, {}, tuple(targets))
    intervals = evaluation.intervals()
    assert intervals["embedding"]["ndcg@3"] == pytest.approx([1.0, 1.0])
    low, high = intervals["embedding"]["ndcg@3 - random"]
    gaps = [1.0 - t.results["random"].ndcg_at_k for t in targets]
    assert min(gaps) <= low < high <= max(gaps) and low > 0
    assert intervals["embedding"]["regret@1"] == [0.0, 0.0]
    assert "bootstrap intervals" in evaluation.markdown() and "[1.000, 1.000]" in evaluation.markdown()
