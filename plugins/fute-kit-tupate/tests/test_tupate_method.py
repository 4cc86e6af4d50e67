"""The ``tupate`` method as fute_kit sees it: registration, options, errors, determinism, provenance."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import fute_kit_tupate
from fute_kit.components import RunContext
from fute_kit.errors import DataError, FuteError, OptionsError
from fute_kit.examples import Examples
from fute_kit.options import validate_options
from fute_kit.testing import check_method
from fute_kit_tupate.method import TuPaTE

FAST = {"epochs": 2, "batch_size": 8, "length": 4, "early_stopping_fraction": 0.0}


def toy_examples(n: int = 24) -> Examples:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    texts = [f"the film was {words[i % 6]} and the cast was {words[(i * 5) % 6]} indeed" for i in range(n)]
    labels = ["positive" if i % 6 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name="toy")


def test_registered_with_a_metric_per_contrast(fute_registry: Callable[..., object]) -> None:
    from fute_kit.similarity import default_metric_for

    registry = fute_registry(fute_kit_tupate)
    assert registry.has("method", "tupate")  # type: ignore[attr-defined]
    # A contrast of two prompts tuned from one start: cosine of the mean over positions; raw prompts: centred.
    assert default_metric_for("tupate", registry, {}) == ("cosine", {"pool": "mean"})
    assert default_metric_for("tupate", registry, {"contrast": "prior"}) == ("cosine", {"pool": "mean"})
    assert default_metric_for("tupate", registry, {"contrast": "none"}) == ("cosine", {"center": "collection"})
    method = registry.build("method", "tupate", {"variant": "prefix", "length": 20})  # type: ignore[attr-defined]
    assert (method.variant, method.length, method.output) == ("prefix", 20, "matrix")


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"variant": "adapter"}, "variant"),
        ({"output": "mean", "variant": "lora"}, "output"),
        ({"length": 0}, "length"),
        ({"init": "text"}, "init"),
        ({"lenght": 8}, "lenght"),
        ({"early_stopping_fraction": 1.0}, "early_stopping_fraction"),
    ],
)
def test_bad_options_fail_before_work(options: dict[str, object], key: str) -> None:
    with pytest.raises(OptionsError) as info:
        validate_options(TuPaTE, options, "method tupate")
    assert key in [k for k, _ in info.value.problems]


def test_output_mean_with_lora_names_the_fix() -> None:
    with pytest.raises(ValueError, match="flat vectors"):
        TuPaTE(variant="lora", output="mean")


def test_empty_and_unlabelled_data_fail_before_loading(tmp_path: Path, hf_context: RunContext) -> None:
    missing = str(tmp_path / "no-such-model")  # never loaded: the data are checked first
    with pytest.raises(DataError, match="tupate: examples 'empty' are empty"):
        TuPaTE().embed(Examples(texts=[], name="empty"), missing, hf_context)
    with pytest.raises(DataError, match=r"tupate: .*no labels"):
        TuPaTE().embed(Examples(texts=["a", "b"], name="u"), missing, hf_context)


def test_missing_surrogate_folder(tmp_path: Path, hf_context: RunContext) -> None:
    with pytest.raises(FuteError, match="does not exist"):
        TuPaTE(**FAST).embed(toy_examples(), str(tmp_path / "no-such-model"), hf_context)


def test_prompt_longer_than_the_model_allows(tiny_model_dir: Callable[..., str], hf_context: RunContext) -> None:
    with pytest.raises(DataError, match="lower length"):
        TuPaTE(length=600).embed(toy_examples(), tiny_model_dir("bert"), hf_context)


def test_conformance_and_determinism(tiny_model_dir: Callable[..., str], hf_context: RunContext) -> None:
    examples = toy_examples()
    method = TuPaTE(**FAST)
    array = check_method(method, examples, tiny_model_dir("bert"), hf_context)
    assert array.shape == (4, 32)
    other_seed = TuPaTE(**{**FAST, "seed": 1}).embed(examples, tiny_model_dir("bert"), hf_context).array
    assert not np.allclose(array, other_seed)
    other_task = examples.with_predictions(1 - examples.labels, "hard", examples.label_names)
    flipped = method.embed(other_task, tiny_model_dir("bert"), hf_context).array
    assert not np.allclose(array, flipped), "the labels must matter"


@pytest.mark.parametrize("family", ["t5", "gpt2"])
def test_conformance_other_families(tiny_model_dir: Callable[..., str], hf_context: RunContext, family: str) -> None:
    array = check_method(TuPaTE(**{**FAST, "variant": "prefix"}), toy_examples(16), tiny_model_dir(family), hf_context)
    assert array.shape[0] == 4


def test_provenance_details(tiny_model_dir: Callable[..., str], hf_context: RunContext) -> None:
    result = TuPaTE(**{**FAST, "early_stopping_fraction": 0.25}).embed(
        toy_examples(), tiny_model_dir("bert"), hf_context
    )
    details = result.details
    for key in (
        "train_loss_first",
        "train_loss_last",
        "probe_loss_before",
        "probe_loss_after",
        "agreement",
        "majority_rate",
        "tuned_parameters",
        "relative_change",
        "held_out_losses",
        "best_epoch",
        "learned",
        "learning_rate",
    ):
        assert key in details, key
    assert details["held_out_examples"] == 6 and details["train_examples"] == 18
    assert details["tuned_parameters"] == 4 * 32
    assert details["learning_rate"] == 1e-2


def test_warns_when_nothing_is_learned(tiny_model_dir: Callable[..., str], hf_context: RunContext) -> None:
    method = TuPaTE(**{**FAST, "learning_rate": 0.0, "head_learning_rate": 0.0})
    result = method.embed(toy_examples(), tiny_model_dir("bert"), hf_context)
    assert any("did not learn" in w for w in result.warnings)
    assert result.details["learned"] is False
    assert result.details["relative_change"] == 0.0


def test_soft_labels_and_regression(tiny_model_dir: Callable[..., str], hf_context: RunContext) -> None:
    examples = toy_examples(16)
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(3), size=len(examples))
    soft_examples = examples.with_predictions(soft, "soft", ("a", "b", "c"))
    scores = examples.with_predictions(rng.normal(size=len(examples)), "regression")
    for data in (soft_examples, scores):
        result = TuPaTE(**FAST).embed(data, tiny_model_dir("bert"), hf_context)
        assert np.all(np.isfinite(result.array)) and result.array.shape == (4, 32)
    assert TuPaTE(**FAST).embed(scores, tiny_model_dir("bert"), hf_context).details["loss"] == "mse"


@pytest.mark.slow
def test_minilm_learns_a_builtin_task(minilm_dir: str, hf_context: RunContext) -> None:
    """The CPU defaults learn: 64 builtin examples, MiniLM, default prompt tuning."""
    from fute_kit_hf.datasets import BuiltinDataset

    examples = BuiltinDataset(dataset="bbc-topic", limit=64).load(hf_context)
    result = TuPaTE().embed(examples, minilm_dir, hf_context)
    assert result.array.shape == (16, 384)
    details = result.details
    assert details["learned"], result.warnings
    assert details["agreement"] > details["majority_rate"] + 0.2
    assert details["probe_loss_after"] < 0.8 * details["probe_loss_before"]


def test_contrast_subtracts_the_null_task_from_the_same_start(
    tiny_model_dir: Callable[..., str], hf_context: RunContext
) -> None:
    surrogate = tiny_model_dir("bert")
    examples = toy_examples(16)
    options = {**FAST, "device": "cpu"}
    plain = TuPaTE(**options, contrast="none").embed(examples, surrogate, hf_context).array
    contrasted = TuPaTE(**options, contrast="prior").embed(examples, surrogate, hf_context).array
    assert contrasted.shape == plain.shape and np.abs(contrasted).max() > 0
    assert np.abs(contrasted).max() < np.abs(plain).max()  # the shared start is gone
    prior = np.full((16, 2), 0.5)
    constant = Examples(examples.texts, prior, "soft", examples.label_names, name="c")
    assert not np.any(TuPaTE(**options, contrast="prior").embed(constant, surrogate, hf_context).array)
