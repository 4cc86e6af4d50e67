"""The training precision: the option and its check, fp32 as the reference path, bf16 close to it, the fallback."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np
import pytest
import torch

import fute_kit_hf.precision as precision
from fute_kit.errors import FuteError
from fute_kit.examples import Examples
from fute_kit.options import options_of
from fute_kit_hf.surrogate import load_surrogate
from fute_kit_hf.targets import make_targets, prior_targets
from fute_kit_hf.training import FineTuned, Settings, TrainingOptions, train

WORDS = ["good", "great", "fine", "bad", "awful", "poor"]
BASE = Settings(2, 1e-3, 4, 0.1, 0.01, 1.0, 0.0, 2, 0)
CPU = torch.device("cpu")


def toy_examples(n: int = 24) -> Examples:
    texts = [f"the film was {WORDS[i % 6]} and the cast was {WORDS[(i * 5) % 6]} indeed" for i in range(n)]
    labels = ["positive" if i % 6 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name="toy")


def trained(model_dir: str, chosen: Settings, null: bool = False) -> tuple[FineTuned, dict, torch.Tensor]:
    """Train on the toy examples (or their null task); also the trained model's pooled features of all of them."""
    surrogate = load_surrogate(model_dir, "cpu")
    examples = toy_examples()
    tokenized, targets = surrogate.tokenize(examples, 32), make_targets(examples, "ce", "cpu")
    model = FineTuned.start(surrogate, 2, chosen.seed)
    details = train(surrogate, model, tokenized, prior_targets(targets) if null else targets, chosen)
    model.model.eval()
    with torch.no_grad():
        batch = next(surrogate.batches(tokenized, len(examples), order="given"))
        pooled = model.pooled(surrogate, batch)
    return model, details, pooled


def test_the_option_round_trips_and_a_bad_value_names_the_choices() -> None:
    assert TrainingOptions().precision == "fp32"  # a method may declare another default
    for value in ("auto", "fp32", "bf16"):
        options = TrainingOptions(precision=value)
        assert options_of(options)["precision"] == value
        assert TrainingOptions(**options_of(options)) == options
        assert options.training_settings(3).precision == value
    with pytest.raises(ValueError, match="precision") as caught:
        TrainingOptions(precision="fp16")
    assert "fp32" in str(caught.value) and "bf16" in str(caught.value)
    with pytest.raises(FuteError, match="precision must be one of auto, fp32, bf16"):
        precision.resolve_precision("half", CPU)


def test_fp32_is_the_reference_path(tiny_model_dir: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    """fp32 never enters autocast nor the fused AdamW: the loop computes exactly what it did before the option."""
    default, default_details, _ = trained(tiny_model_dir("bert"), BASE)

    def no_autocast(*args: object, **kwargs: object) -> None:
        raise AssertionError("fp32 must not autocast")

    made: list[dict] = []
    real_adamw = torch.optim.AdamW

    def adamw(*args: object, **kwargs: object) -> torch.optim.AdamW:
        made.append(kwargs)
        return real_adamw(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", no_autocast)
    monkeypatch.setattr(torch.optim, "AdamW", adamw)
    explicit, details, _ = trained(tiny_model_dir("bert"), attrs.evolve(BASE, precision="fp32"))
    assert made and all("fused" not in kwargs and "foreach" not in kwargs for kwargs in made)
    for (name, a), (_, b) in zip(default.model.state_dict().items(), explicit.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert details["precision"] == default_details["precision"] == "fp32"
    assert details["optimizer"] == "adamw" and "stopped_at_step" not in details


def test_bf16_runs_and_stays_close_to_fp32(tiny_model_dir: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The path is tested on any CPU (emulated bfloat16 where the CPU lacks it): only the capability check is forced.
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    _, fp32_details, fp32_pooled = trained(tiny_model_dir("bert"), BASE)
    _, details, pooled = trained(tiny_model_dir("bert"), attrs.evolve(BASE, precision="auto"))
    assert details["precision"] == "bf16" and details["optimizer"] == "adamw-fused"
    assert torch.isfinite(pooled).all() and pooled.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(pooled, fp32_pooled, dim=-1)
    assert float(cosine.min()) > 0.99, cosine
    assert details["probe_loss_after"] < details["probe_loss_before"]
    assert abs(details["probe_loss_after"] - fp32_details["probe_loss_after"]) < 0.1


def test_auto_falls_back_to_fp32_where_bf16_is_not_native(
    tiny_model_dir: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512_bf16": False, "amx_bf16": False})
    assert precision.resolve_precision("auto", CPU) == "fp32"
    with pytest.raises(FuteError, match=r"precision 'bf16'.*use precision 'auto'"):
        precision.resolve_precision("bf16", CPU)
    _, details, pooled = trained(tiny_model_dir("bert"), attrs.evolve(BASE, precision="auto"))
    assert details["precision"] == "fp32" and details["optimizer"] == "adamw-fused"
    assert torch.isfinite(pooled).all()
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx512_bf16": True})
    assert precision.resolve_precision("auto", CPU) == "bf16"
    assert precision.resolve_precision("auto", torch.device("meta")) == "fp32"  # neither CPU nor CUDA


def test_stop_loss_ends_a_null_task_early(tiny_model_dir: Callable[..., str]) -> None:
    """The null task has nothing to learn: its excess loss is near 0 from the start, so training stops."""
    chosen = attrs.evolve(BASE, stop_loss=0.05)
    _, details, _ = trained(tiny_model_dir("bert"), chosen, null=True)
    assert details["stopped_at_step"] == details["steps"] == 5 and details["epochs_run"] == 1
    _, full, _ = trained(tiny_model_dir("bert"), BASE, null=True)
    assert full["steps"] == 12 and "stopped_at_step" not in full
    assert np.isfinite(details["probe_loss_after"])
