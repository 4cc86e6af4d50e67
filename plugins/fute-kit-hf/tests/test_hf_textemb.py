"""The textemb baseline: mean sentence embedding of a dataset's texts, labels ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fute_kit.errors import DataError, OptionsError
from fute_kit.examples import Examples
from fute_kit.testing import check_method
from fute_kit_hf.surrogate import load_surrogate
from fute_kit_hf.textemb import TextEmb

SPORT = [
    "the striker scored twice in the final",
    "the team won the league title",
    "a late goal settled the match",
    "the coach praised his defenders",
    "the tennis champion lost in straight sets",
]
MONEY = [
    "shares fell as interest rates rose",
    "the bank reported higher profits",
    "inflation hit a ten-year high",
    "the company cut its sales forecast",
    "bond yields climbed on friday",
]


@pytest.mark.parametrize("family", ["bert", "t5", "gpt2", "llama"])
def test_mean_of_mean_pooled_sentences(family: str, tiny_model_dir: Callable[..., str], hf_context: Any) -> None:
    folder = tiny_model_dir(family)
    examples = Examples.from_hard_labels(SPORT + MONEY, ["s"] * 5 + ["m"] * 5)
    result = TextEmb(batch_size=3, device="cpu").embed(examples, folder, hf_context)
    assert result.array.shape == (32,) and result.array.dtype == np.float32
    surrogate = load_surrogate(folder, "cpu")
    one_by_one = []
    with torch.no_grad():
        for text in examples.texts:
            features = surrogate.forward_features(surrogate.backbone, next(surrogate.batches([text], 1)))
            one_by_one.append(features.last[0].mean(dim=0).numpy())
    np.testing.assert_allclose(result.array, np.mean(one_by_one, axis=0), rtol=1e-4, atol=1e-6)
    assert result.details["n"] == 10 and 0 < result.details["padding_efficiency"] <= 1


def test_labels_and_order_do_not_matter(tiny_model_dir: Callable[..., str], hf_context: Any) -> None:
    folder = tiny_model_dir("bert")
    labelled = Examples.from_hard_labels(SPORT + MONEY, ["s"] * 5 + ["m"] * 5)
    method = TextEmb(batch_size=4, device="cpu")
    array = check_method(method, labelled, folder, hf_context)
    reversed_unlabelled = labelled.select(list(range(9, -1, -1))).unlabeled()
    np.testing.assert_allclose(method.embed(reversed_unlabelled, folder, hf_context).array, array, rtol=1e-5)


def test_truncation_is_reported(tiny_model_dir: Callable[..., str], hf_context: Any) -> None:
    examples = Examples(texts=[" ".join(SPORT), "short"])
    result = TextEmb(max_length=8, device="cpu").embed(examples, tiny_model_dir("bert"), hf_context)
    assert result.details["truncated"] == 1 and "truncated" in result.warnings[0]


def test_bad_input(tiny_model_dir: Callable[..., str], hf_context: Any, fute_registry: Callable) -> None:
    import fute_kit_hf

    with pytest.raises(DataError, match="empty"):
        TextEmb(device="cpu").embed(Examples(texts=[]), tiny_model_dir("bert"), hf_context)
    spec = fute_registry(fute_kit_hf).get("method", "textemb")
    assert spec.cls is TextEmb and TextEmb.default_metric == ("cosine", {})
    with pytest.raises(OptionsError, match="batch_size"):
        spec.build({"batch_size": 0})


def test_minilm_separates_topics(minilm_dir: str, hf_context: Any) -> None:
    method = TextEmb(device="cpu")

    def embed(texts: list[str]) -> np.ndarray:
        return method.embed(Examples(texts=texts), "minilm", hf_context).array

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    sport_a, sport_b, money = embed(SPORT[:3]), embed(SPORT[3:]), embed(MONEY)
    assert sport_a.shape == (384,)
    assert cosine(sport_a, sport_b) > cosine(sport_a, money) + 0.05
