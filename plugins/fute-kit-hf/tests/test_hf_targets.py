"""Labels as training targets: the losses each label kind gets, pseudo-labels, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fute_kit.errors import DataError
from fute_kit.examples import Examples
from fute_kit_hf.targets import learning_warnings, majority_rate, make_targets, per_example_loss, target_entropy


def soft(rows: list[list[float]]) -> Examples:
    texts = [f"text {i}" for i in range(len(rows))]
    return Examples(texts, np.array(rows), "soft", ("neg", "pos"), name="clf")


def test_soft_labels_use_soft_cross_entropy_bce_or_their_argmax() -> None:
    examples = soft([[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    ce = make_targets(examples, "ce", "cpu")
    assert ce.loss == "soft-ce" and ce.values.shape == (3, 2)
    assert make_targets(examples, "bce", "cpu").loss == "bce"
    hard = make_targets(examples, "hard", "cpu")
    assert hard.loss == "ce" and hard.num_outputs == 2
    assert hard.values.tolist() == [1, 0, 0]  # a tie goes to the first class
    assert majority_rate(hard) == pytest.approx(2 / 3)


def test_soft_ce_minus_entropy_is_zero_at_the_target() -> None:
    target = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    excess = per_example_loss(target.log(), target, "soft-ce") - target_entropy(target, "soft-ce")
    assert torch.allclose(excess, torch.zeros(2), atol=1e-6)


def test_errors_name_the_method_and_the_examples() -> None:
    bad = soft([[1.1, -0.1], [0.5, 0.5]])
    with pytest.raises(DataError, match=r"^tupate: examples 'clf': soft labels must be finite"):
        make_targets(bad, "ce", "cpu", method="tupate")
    with pytest.raises(DataError, match="have no labels"):
        make_targets(Examples(["a"], name="u"), "ce", "cpu")


def test_learning_warnings_flag_a_flat_loss_and_the_majority_rate() -> None:
    flat = {"probe_loss_before": 0.69, "probe_loss_after": 0.689, "agreement": 0.51}
    warnings = learning_warnings(flat, majority=0.5, what="tuned parameters")
    assert len(warnings) == 2 and all(w.startswith("tuned parameters did not learn") for w in warnings)
    assert learning_warnings({"probe_loss_before": 0.69, "probe_loss_after": 0.3, "agreement": 0.9}, 0.5) == []


def test_prior_targets_are_the_null_task_of_each_label_kind() -> None:
    from fute_kit_hf.targets import Targets, prior_targets

    hard = prior_targets(Targets(torch.tensor([0, 1, 1, 1]), "ce", 2))
    assert hard.loss == "soft-ce" and torch.allclose(hard.values, torch.tensor([[0.25, 0.75]] * 4))
    soft = prior_targets(Targets(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), "soft-ce", 2))
    assert torch.allclose(soft.values, torch.tensor([[0.4, 0.6]] * 2))
    regression = prior_targets(Targets(torch.tensor([-1.0, 1.0]), "mse", 1))
    assert regression.loss == "mse" and not regression.values.any()
