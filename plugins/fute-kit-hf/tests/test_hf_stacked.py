"""Stacked training (fute_kit_hf.stacked): K members in lock-step equal K one-at-a-time trainings."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import pytest
import torch

from fute_kit.examples import Examples
from fute_kit_hf.stacked import Member, stacking_problem, train_stacked
from fute_kit_hf.surrogate import load_surrogate
from fute_kit_hf.targets import make_targets, prior_targets
from fute_kit_hf.training import FineTuned, Settings, train

WORDS = ["good", "great", "fine", "bad", "awful", "poor", "odd", "long"]

# epochs, learning rate, batch size, warm-up, weight decay, clipping, held-out fraction, patience, seed
BASE = Settings(2, 1e-3, 4, 0.1, 0.01, 1.0, 0.0, 2, 0, dropout=False)


def toy_examples(n: int, shift: int, kind: str = "hard") -> Examples:
    """Texts of unequal lengths (so batches pad differently per member) with hard or soft labels."""
    texts = [f"the film was {WORDS[(i + shift) % 8]} " + "and so on " * ((i * 3 + shift) % 4) for i in range(n)]
    if kind == "soft":
        probs = np.random.default_rng(shift).dirichlet([1.0, 1.0], size=n)
        return Examples(texts=texts, labels=probs, label_kind="soft", label_names=("a", "b"), name=f"soft{shift}")
    labels = ["positive" if (i + shift) % 8 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name=f"toy{shift}")


def members_of(surrogate: object, sizes: list[int], kind: str = "hard") -> list[Member]:
    members = []
    for shift, n in enumerate(sizes):
        examples = toy_examples(n, shift, kind)
        members.append(Member(surrogate.tokenize(examples, 32), make_targets(examples, "ce", "cpu")))  # type: ignore[attr-defined]
    return members


def one_at_a_time(surrogate: object, member: Member, settings: Settings) -> tuple[FineTuned, dict]:
    trained = FineTuned.start(surrogate, member.targets.num_outputs, settings.seed)  # type: ignore[arg-type]
    return trained, train(surrogate, trained, member.tokenized, member.targets, settings)  # type: ignore[arg-type]


def max_difference(a: FineTuned, b: FineTuned) -> float:
    worst = 0.0
    for module_a, module_b in ((a.model, b.model), (a.head, b.head)):
        for (_, x), (_, y) in zip(module_a.named_parameters(), module_b.named_parameters(), strict=True):
            worst = max(worst, float((x - y).detach().abs().max()))
    return worst


@pytest.mark.parametrize("kind", ["hard", "soft"])
def test_without_dropout_stacked_weights_equal_one_at_a_time(tiny_model_dir: Callable[..., str], kind: str) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    members = members_of(surrogate, [12, 12, 12], kind)
    state = torch.get_rng_state()
    stacked = train_stacked(surrogate, members, BASE)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    for member, (trained, details) in zip(members, stacked, strict=True):
        twin, twin_details = one_at_a_time(surrogate, member, BASE)
        assert max_difference(trained, twin) < 1e-5
        assert details["stacked_members"] == 3
        for key in ("steps", "epochs_run", "train_examples", "probe_examples"):
            assert details[key] == twin_details[key], key
        for key in ("train_loss_first", "train_loss_last", "probe_loss_before", "probe_loss_after"):
            assert details[key] == pytest.approx(twin_details[key], abs=1e-5), key


def test_members_with_fewer_steps_stop_where_their_own_training_stops(tiny_model_dir: Callable[..., str]) -> None:
    # 5, 12 and 21 examples in batches of 4: 2, 3 and 6 steps per epoch; the short ones are masked after theirs,
    # with their schedule, AdamW state and clipping their own (a hard task and its soft null task side by side).
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    members = members_of(surrogate, [5, 12, 21])
    members[1] = Member(members[1].tokenized, prior_targets(members[1].targets))
    chosen = attrs.evolve(BASE, epochs=3, max_grad_norm=0.05, final_pass=True)
    stacked = train_stacked(surrogate, members, chosen)
    for member, (trained, details) in zip(members, stacked, strict=True):
        twin, twin_details = one_at_a_time(surrogate, member, chosen)
        assert details["steps"] == twin_details["steps"] == 3 * -(-len(member.tokenized) // 4)
        assert max_difference(trained, twin) < 1e-5
        assert details["final_loss"] == pytest.approx(twin_details["final_loss"], abs=1e-5)


def test_with_dropout_members_learn_like_their_twins(tiny_model_dir: Callable[..., str]) -> None:
    surrogate = load_surrogate(tiny_model_dir("bert"), "cpu")
    members = members_of(surrogate, [16, 16])
    chosen = attrs.evolve(BASE, dropout=True, epochs=3)
    stacked = train_stacked(surrogate, members, chosen)
    for member, (trained, details) in zip(members, stacked, strict=True):
        twin, twin_details = one_at_a_time(surrogate, member, chosen)
        difference = max_difference(trained, twin)
        assert 0 < difference < 0.05  # other dropout masks: near, not equal
        assert details["probe_loss_after"] < details["probe_loss_before"]
        assert details["probe_loss_after"] == pytest.approx(twin_details["probe_loss_after"], abs=0.05)


def test_what_cannot_be_stacked_is_named(tiny_model_dir: Callable[..., str]) -> None:
    bert = load_surrogate(tiny_model_dir("bert"), "cpu")
    members = members_of(bert, [8, 8])
    assert stacking_problem(bert, members, BASE) is None
    assert "early stopping" in str(stacking_problem(bert, members, attrs.evolve(BASE, early_stopping_fraction=0.2)))
    assert "head_init" in str(stacking_problem(bert, members, attrs.evolve(BASE, head_init="probe")))
    three = Examples.from_hard_labels(["a b", "c d", "e f"], ["x", "y", "z"])
    mixed = [*members, Member(bert.tokenize(three, 32), make_targets(three, "ce", "cpu"))]
    assert "differ in size" in str(stacking_problem(bert, mixed, BASE))
    gpt2 = load_surrogate(tiny_model_dir("gpt2"), "cpu")
    assert "encoder" in str(stacking_problem(gpt2, members, BASE))
    with pytest.raises(ValueError, match="cannot train stacked"):
        train_stacked(gpt2, members, BASE)
