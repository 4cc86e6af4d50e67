"""The Fisher pass: batched == per-example loop, reductions, sampled labels, frozen weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fute_kit.examples import Examples
from fute_kit_hf.targets import Targets, make_targets
from fute_kit_hf.training import FineTuned, Settings, train
from fute_kit_taskemb.fisher import fisher_pass, per_example_fisher

FAMILIES = ("bert", "t5", "gpt2", "llama")
SETTINGS = Settings(
    epochs=2,
    learning_rate=1e-3,
    batch_size=4,
    warmup_fraction=0.1,
    weight_decay=0.01,
    max_grad_norm=1.0,
    early_stopping_fraction=0.0,
    patience=2,
    seed=0,
)


def max_relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| of each component row relative to that row's largest value."""
    scale = np.abs(b).max(axis=1, keepdims=True)
    return float((np.abs(a - b) / scale).max())


@pytest.fixture(scope="session")
def trained(tiny_model_dir: Callable[..., str]) -> Callable[[str, Examples], tuple[Any, FineTuned, Any, Targets]]:
    """Factory: (family, examples) -> the surrogate, its fine-tuned copy and head, the tokenized examples, targets."""
    from fute_kit_hf.surrogate import load_surrogate

    cache: dict[tuple[str, str], tuple[Any, FineTuned, Any, Targets]] = {}

    def get(family: str, examples: Examples) -> tuple[Any, FineTuned, Any, Targets]:
        key = (family, examples.name)
        if key not in cache:
            surrogate = load_surrogate(tiny_model_dir(family), "cpu")
            tokenized = surrogate.tokenize(examples, 64)
            targets = make_targets(examples, "ce", surrogate.device)
            result = FineTuned.start(surrogate, targets.num_outputs, SETTINGS.seed)
            train(surrogate, result, tokenized, targets, SETTINGS)
            cache[key] = (surrogate, result, tokenized, targets)
        return cache[key]

    return get


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_fisher_equals_per_example_loop(family: str, trained: Callable, hard_examples: Examples) -> None:
    surrogate, pair, tokenized, targets = trained(family, hard_examples)
    batched = fisher_pass(surrogate, pair, tokenized, targets, batch_size=6).array
    looped = per_example_fisher(surrogate, pair, tokenized, targets)
    assert batched.shape == (surrogate.num_layers + 1, surrogate.hidden_size)
    assert np.all(batched > 0)
    assert max_relative_difference(batched, looped) < 1e-4


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_batched_fisher_equals_loop_for_soft_labels(loss: str, trained: Callable, soft_examples: Examples) -> None:
    surrogate, pair, tokenized, _ = trained("bert", soft_examples)
    targets = make_targets(soft_examples, loss, surrogate.device)  # type: ignore[arg-type]
    batched = fisher_pass(surrogate, pair, tokenized, targets, batch_size=5).array
    looped = per_example_fisher(surrogate, pair, tokenized, targets)
    assert max_relative_difference(batched, looped) < 1e-4


def test_exact_reduction_does_not_depend_on_batch_size_reference_does(
    trained: Callable, hard_examples: Examples
) -> None:
    surrogate, pair, tokenized, targets = trained("bert", hard_examples)

    def run(reduction: str, batch_size: int) -> np.ndarray:
        return fisher_pass(
            surrogate,
            pair,
            tokenized,
            targets,
            reduction=reduction,
            batch_size=batch_size,  # type: ignore[arg-type]
        ).array

    exact_small, exact_large = run("exact", 3), run("exact", 16)
    assert max_relative_difference(exact_small, exact_large) < 1e-5
    reference_small, reference_large = run("reference", 3), run("reference", 16)
    assert max_relative_difference(reference_large, reference_small) > 0.05
    # with one example per batch the reference sums nothing, so it equals the exact Fisher
    assert max_relative_difference(run("reference", 1), exact_large) < 1e-4


def test_sampled_labels_differ_from_empirical_and_are_seeded(trained: Callable, hard_examples: Examples) -> None:
    surrogate, pair, tokenized, targets = trained("bert", hard_examples)
    empirical = fisher_pass(surrogate, pair, tokenized, targets).array
    sampled = fisher_pass(surrogate, pair, tokenized, targets, labels="sampled", seed=0).array
    again = fisher_pass(surrogate, pair, tokenized, targets, labels="sampled", seed=0, batch_size=5).array
    other = fisher_pass(surrogate, pair, tokenized, targets, labels="sampled", seed=1).array
    assert max_relative_difference(sampled, empirical) > 1e-3
    assert max_relative_difference(again, sampled) < 1e-5  # labels are drawn per example, not per batch
    assert max_relative_difference(other, sampled) > 1e-3
    assert np.all(sampled >= 0)


def test_components_select_rows(trained: Callable, hard_examples: Examples) -> None:
    surrogate, pair, tokenized, targets = trained("gpt2", hard_examples)
    both = fisher_pass(surrogate, pair, tokenized, targets, components="both")
    layers = fisher_pass(surrogate, pair, tokenized, targets, components="layers")
    pooled = fisher_pass(surrogate, pair, tokenized, targets, components="pooled")
    assert both.row_names == [*layers.row_names, *pooled.row_names]
    np.testing.assert_allclose(np.vstack([layers.array, pooled.array]), both.array, rtol=1e-6)


def test_weights_are_frozen_during_the_fisher_pass(trained: Callable, hard_examples: Examples) -> None:
    surrogate, pair, tokenized, targets = trained("llama", hard_examples)
    model, head = pair.model, pair.head
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head_before = head.weight.clone()
    model.requires_grad_(True)  # as training leaves it: the pass itself must freeze the weights
    seen: list[bool] = []
    hooks = [p.register_hook(lambda g: seen.append(True)) for p in model.parameters()]
    fisher_pass(surrogate, pair, tokenized, targets)
    for hook in hooks:
        hook.remove()
    assert not seen, "a weight gradient was computed"
    assert not model.training and not head.training
    assert all(not p.requires_grad and p.grad is None for p in [*model.parameters(), *head.parameters()])
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert torch.equal(head.weight, head_before)


def test_backbone_stays_pristine(trained: Callable, hard_examples: Examples) -> None:
    surrogate, pair, _, _ = trained("t5", hard_examples)
    model = pair.model
    pristine = dict(surrogate.backbone.named_parameters())
    changed = [name for name, p in model.named_parameters() if not torch.equal(p, pristine[name])]
    assert changed, "training changed nothing"
    assert all(not p.requires_grad for p in surrogate.backbone.parameters())
