"""The shared training loop: seeded and repeatable, leaves the caller's RNG alone, keeps the best epoch."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import torch

from fute_kit.examples import Examples
from fute_kit_hf.surrogate import load_surrogate
from fute_kit_hf.targets import make_targets, split_for_early_stopping
from fute_kit_hf.training import FineTuned, Settings, evaluate, train

WORDS = ["good", "great", "fine", "bad", "awful", "poor"]


def toy_examples(n: int = 24) -> Examples:
    texts = [f"the film was {WORDS[i % 6]} and the cast was {WORDS[(i * 5) % 6]} indeed" for i in range(n)]
    labels = ["positive" if i % 6 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name="toy")


# epochs, learning rate, batch size, warm-up, weight decay, clipping, held-out fraction, patience, seed
BASE = Settings(2, 1e-3, 4, 0.1, 0.01, 1.0, 0.0, 2, 0)


def settings(**changes: object) -> Settings:
    return attrs.evolve(BASE, **changes)


def run(model_dir: str, chosen: Settings) -> tuple[FineTuned, dict]:
    """Train a fine-tuned copy on the toy examples; also checks that the caller's torch RNG is left as it was."""
    surrogate = load_surrogate(model_dir, "cpu")
    examples = toy_examples()
    tokenized, targets = surrogate.tokenize(examples, 32), make_targets(examples, "ce", "cpu")
    trained = FineTuned.start(surrogate, 2, chosen.seed)
    state = torch.get_rng_state()
    details = train(surrogate, trained, tokenized, targets, chosen)
    assert torch.equal(torch.get_rng_state(), state)  # dropout masks were drawn inside fork_rng
    return trained, details


def test_a_seed_fixes_the_result_and_the_callers_rng_is_untouched(tiny_model_dir: Callable[..., str]) -> None:
    first, details = run(tiny_model_dir("bert"), settings())
    second, _ = run(tiny_model_dir("bert"), settings())
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(first.head.weight, second.head.weight)
    other, _ = run(tiny_model_dir("bert"), settings(seed=1))
    assert not torch.equal(first.head.weight, other.head.weight)
    assert details["steps"] == 2 * 6 and details["epochs_run"] == 2
    assert details["probe_loss_after"] < details["probe_loss_before"]
    assert "final_loss" not in details  # only with final_pass


def test_weight_decay_spares_biases_and_norms(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    decay, no_decay = FineTuned.start(surrogate, 3, 0).param_groups(settings())
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])


def test_early_stopping_keeps_the_best_epoch(tiny_model_dir: Callable[..., str]) -> None:
    chosen = settings(epochs=4, learning_rate=5e-3, early_stopping_fraction=0.25, patience=1, final_pass=True)
    trained, details = run(tiny_model_dir("bert"), chosen)
    held = details["held_out_losses"]
    assert details["held_out_examples"] == 6 and details["train_examples"] == 18
    assert details["epochs_run"] == len(held) <= 4
    assert details["best_epoch"] == int(np.argmin(held)) + 1
    # The restored state is the best epoch's: its held-out loss is the smallest one seen.
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    examples = toy_examples()
    tokenized, targets = surrogate.tokenize(examples, 32), make_targets(examples, "ce", "cpu")
    _, held_pos = split_for_early_stopping(len(examples), 0.25, 0)
    again = evaluate(surrogate, trained, tokenized, targets, held_pos, chosen.batch_size)
    assert abs(again.loss - min(held)) < 1e-5
    assert 0.0 <= details["agreement"] <= 1.0 and "agreement_before" in details


def test_grouped_batches_train_the_same_steps_on_other_batches(tiny_model_dir: Callable[..., str]) -> None:
    from fute_kit_hf.training import TrainingOptions

    assert TrainingOptions(batch_order="grouped").training_settings(0).batch_order == "grouped"
    shuffled, _ = run(tiny_model_dir("bert"), settings())
    grouped, details = run(tiny_model_dir("bert"), settings(batch_order="grouped"))
    again, _ = run(tiny_model_dir("bert"), settings(batch_order="grouped"))
    assert details["steps"] == 2 * 6 and details["probe_loss_after"] < details["probe_loss_before"]
    assert torch.equal(grouped.head.weight, again.head.weight)  # still fixed by the seed
    assert not torch.equal(grouped.head.weight, shuffled.head.weight)
