"""The taskemb method end to end: every family, every label kind, warnings, determinism, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest
import torch

import fute_kit_taskemb
from fute_kit.errors import DataError, FuteError, OptionsError
from fute_kit.examples import Examples
from fute_kit.testing import check_method
from fute_kit_taskemb.method import TaskEmb

FAMILIES = ("bert", "t5", "gpt2", "llama")
# contrast "none": these tests check the Fisher itself; test_contrast_with_the_prior_task checks the contrast.
FAST = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "device": "cpu", "contrast": "none"}


@pytest.mark.parametrize("family", FAMILIES)
def test_full_method_runs_on_every_family(
    family: str, tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    result = TaskEmb(**FAST).embed(hard_examples, tiny_model_dir(family), context)
    assert result.array.shape == (3, 32)  # 2 layers + pooled, hidden 32
    assert result.array.dtype == np.float32
    assert np.all(np.isfinite(result.array)) and np.all(result.array > 0)
    details = result.details
    assert details["surrogate_family"] == {"bert": "encoder", "t5": "encoder-decoder"}.get(family, "decoder")
    assert details["components"] == ["layer_1", "layer_2", "pooled"]
    for key in ("train_loss_first", "train_loss_last", "agreement", "majority_rate", "truncated", "learned"):
        assert key in details, key
    assert details["probe_loss_after"] < details["probe_loss_before"]


def test_check_method_and_seed_fixes_everything(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    surrogate = tiny_model_dir("bert")
    state = torch.random.get_rng_state()
    first = check_method(TaskEmb(**FAST), hard_examples, surrogate, context)  # embeds twice, compares
    assert torch.equal(state, torch.random.get_rng_state()), "the global torch RNG was disturbed"
    other_seed = TaskEmb(**{**FAST, "seed": 1}).embed(hard_examples, surrogate, context).array
    assert not np.allclose(first, other_seed, rtol=1e-3)


@pytest.mark.parametrize(
    ("fixture", "options", "loss"),
    [
        ("hard_examples", {}, "ce"),
        ("soft_examples", {}, "soft-ce"),
        ("soft_examples", {"soft_loss": "bce"}, "bce"),
        ("regression_examples", {}, "mse"),
    ],
)
def test_label_kinds(
    fixture: str,
    options: dict,
    loss: str,
    request: pytest.FixtureRequest,
    tiny_model_dir: Callable[..., str],
    context: Any,
) -> None:
    examples = request.getfixturevalue(fixture)
    result = TaskEmb(**FAST, **options).embed(examples, tiny_model_dir("bert"), context)
    assert result.details["loss"] == loss
    assert np.all(np.isfinite(result.array)) and result.array.shape == (3, 32)
    if loss == "mse":
        assert "agreement" not in result.details and result.details["majority_rate"] is None


def test_sampled_labels_and_reference_reduction_options(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    surrogate = tiny_model_dir("bert")
    empirical = TaskEmb(**FAST).embed(hard_examples, surrogate, context).array
    sampled = TaskEmb(**FAST, labels="sampled").embed(hard_examples, surrogate, context).array
    pooled = TaskEmb(**FAST, components="pooled").embed(hard_examples, surrogate, context).array
    assert not np.allclose(empirical, sampled, rtol=1e-3)
    np.testing.assert_allclose(pooled[0], empirical[-1], rtol=1e-5)


def test_warns_when_the_surrogate_does_not_learn(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    result = TaskEmb(**{**FAST, "learning_rate": 0.0}).embed(hard_examples, tiny_model_dir("bert"), context)
    assert result.details["learned"] is False
    assert any(w.startswith("surrogate did not learn") for w in result.warnings)
    assert result.details["probe_loss_after"] == pytest.approx(result.details["probe_loss_before"])


def test_the_probe_head_fits_the_labels_and_does_not_depend_on_the_seed(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    from fute_kit_hf.probe import fit_probe
    from fute_kit_hf.surrogate import make_head

    # The probe alone (no fine-tuning) lowers the loss.
    options = {**FAST, "learning_rate": 0.0, "head_init": "probe"}
    result = TaskEmb(**options).embed(hard_examples, tiny_model_dir("bert"), context)
    assert result.details["head_init"] == "probe"
    assert result.details["probe_loss_after"] < result.details["probe_loss_before"]
    # The fit is convex and starts from zero: heads drawn from different seeds end at the same point.
    features = torch.randn(40, 8, generator=torch.Generator().manual_seed(0))
    labels = (features[:, 0] > 0).long()
    heads = [make_head(8, 2, seed) for seed in (0, 1)]
    assert not torch.equal(heads[0].weight, heads[1].weight)
    for head in heads:
        fit_probe(head, features, labels, "ce")
    assert torch.allclose(heads[0].weight, heads[1].weight) and torch.allclose(heads[0].bias, heads[1].bias)
    assert (heads[0](features).argmax(-1) == labels).float().mean() > 0.9


def test_no_warning_when_it_learns(tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any) -> None:
    result = TaskEmb(**{**FAST, "epochs": 6}).embed(hard_examples, tiny_model_dir("bert"), context)
    assert result.details["learned"] is True, result.warnings
    assert result.details["agreement"] > result.details["majority_rate"]


def test_early_stopping_holds_out_and_stops(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    options = {**FAST, "epochs": 20, "early_stopping_fraction": 0.25, "patience": 1, "learning_rate": 3e-3}
    details = TaskEmb(**options).embed(hard_examples, tiny_model_dir("bert"), context).details
    assert details["held_out_examples"] == 4 and details["train_examples"] == 12
    assert details["epochs_run"] < 20
    assert len(details["held_out_losses"]) == details["epochs_run"]
    assert details["best_epoch"] == 1 + int(np.argmin(details["held_out_losses"]))


def test_truncation_is_counted(tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any) -> None:
    long = attrs.evolve(
        hard_examples, texts=[t + " and so on" * 20 if i % 2 else t for i, t in enumerate(hard_examples.texts)]
    )
    result = TaskEmb(**{**FAST, "max_length": 16}).embed(long, tiny_model_dir("bert"), context)
    assert result.details["truncated"] == len(long) // 2
    assert any("truncated" in w for w in result.warnings)


def test_pairs_are_supported(tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any) -> None:
    pairs = attrs.evolve(hard_examples, text_pairs=["so says the critic"] * len(hard_examples))
    result = TaskEmb(**FAST).embed(pairs, tiny_model_dir("bert"), context)
    assert np.all(np.isfinite(result.array))


def test_bad_input_fails_before_work(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any, tmp_path: Any
) -> None:
    method = TaskEmb(**FAST)
    surrogate = tiny_model_dir("bert")
    with pytest.raises(DataError, match="empty"):
        method.embed(hard_examples.select([]), surrogate, context)
    with pytest.raises(DataError, match="no labels"):
        method.embed(hard_examples.unlabeled(), surrogate, context)
    one_class = Examples.from_hard_labels(["a", "b"], ["x", "x"], name="one")
    with pytest.raises(DataError, match="at least 2 classes"):
        method.embed(one_class, surrogate, context)
    with pytest.raises(DataError, match="3 columns but 2 label names"):
        Examples(texts=["a"], labels=[[0.2, 0.3, 0.5]], label_kind="soft", label_names=("x", "y"))
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(FuteError, match="does not exist"):
        method.embed(hard_examples, missing, context)


def test_registered_with_validated_options(fute_registry: Callable) -> None:
    registry = fute_registry(fute_kit_taskemb)
    spec = registry.get("method", "taskemb")
    assert spec.cls is TaskEmb
    assert TaskEmb.default_metric == ("cosine", {"normalize": "component"})
    with pytest.raises(OptionsError, match="labels"):
        spec.build({"labels": "guessed"})
    with pytest.raises(OptionsError, match="learning_rat"):
        spec.build({"learning_rat": 1e-3})
    with pytest.raises(OptionsError, match="epochs"):
        spec.build({"epochs": 0})


@pytest.mark.slow
def test_minilm_learns_a_real_builtin_dataset(minilm_dir: str, context: Any) -> None:
    from fute_kit_hf.datasets import BuiltinDataset

    # The builtin data ships inside fute-kit-hf: failing to load it is a failure, never a skip.
    examples = BuiltinDataset(dataset="rt-sentiment", limit=64).load(context)
    result = TaskEmb(device="cpu").embed(examples, "minilm", context)
    details = result.details
    assert result.array.shape == (7, 384)
    assert details["learned"] is True, result.warnings
    assert details["train_loss_last"] < details["train_loss_first"]
    assert details["agreement"] > details["majority_rate"] + 0.05


def test_contrast_with_the_prior_task(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, context: Any
) -> None:
    surrogate = tiny_model_dir("bert")
    options = {**FAST, "contrast": "prior"}
    plain = TaskEmb(**FAST).embed(hard_examples, surrogate, context).array.astype(np.float64)
    result = TaskEmb(**options).embed(hard_examples, surrogate, context)
    assert result.details["contrast"] == "prior" and result.array.shape == plain.shape
    # task rows (unit length) minus the null task's rows (unit length): the difference of two unit vectors
    unit = plain / np.linalg.norm(plain, axis=1, keepdims=True)
    null = unit - result.array
    assert np.allclose(np.linalg.norm(null, axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(result.array, axis=1).max() > 1e-3  # the labels carry something beyond their prior

    # A prior-only model labels every text with its prior: that is the null task, so its embedding is zero.
    prior = np.bincount(hard_examples.labels) / len(hard_examples)
    constant = Examples(
        hard_examples.texts, np.tile(prior, (len(hard_examples), 1)), "soft", hard_examples.label_names, name="c"
    )
    zero = TaskEmb(**options).embed(constant, surrogate, context)
    assert not np.any(zero.array) and zero.array.shape == plain.shape
    assert zero.details["null_task"] is True  # found before any training: nothing to subtract from
    assert any("embedding is zero" in w for w in zero.warnings)
