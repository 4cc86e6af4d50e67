"""``fute measure``: a model's warnings count the inputs it was measured on, not the one-input label check."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import numpy as np
import pytest
from toy_plugins import LABELS, TEXTS, ToyPlugin

from fute_kit import Examples, RunContext, hookimpl
from fute_kit.accuracy import measure_accuracy
from fute_kit.config import parse_config
from fute_kit.options import option


@attrs.frozen
class OffLabelModel:
    """Says 'positive' when the keyword is there; warns, as hf-prompted does, about inputs it has no answer for."""

    name = "off-label"

    keyword: str = option(help="word that signals the positive class")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        hit = np.array([self.keyword in t for t in inputs.texts], dtype=np.float64)
        context.logger.warning("off-label: for %d of %d inputs no label word", int((hit == 0).sum()), len(inputs))
        probs = np.stack([1 - 0.8 * hit - 0.1, 0.8 * hit + 0.1], axis=1)
        return inputs.with_predictions(probs, "soft", ("negative", "positive"))


class OffLabelPlugin:
    @hookimpl
    def register_model_sources(self, register: Any) -> None:
        register(OffLabelModel)


def test_warnings_count_every_measured_input(fute_registry: Any, caplog: pytest.LogCaptureFixture) -> None:
    registry = fute_registry(ToyPlugin(), OffLabelPlugin())
    config = parse_config(
        {
            "space": {"surrogate": "none", "method": "label-stats"},
            "datasets": [{"name": "reviews", "source": "inline", "texts": TEXTS, "labels": LABELS}],
            "unlabeled": {"source": "inline", "texts": TEXTS},
            "models": [{"name": "llm", "source": "off-label", "keyword": "good"}],
        },
        registry,
    )
    with caplog.at_level(logging.WARNING):
        rows = measure_accuracy(config, "reviews", registry=registry)
    assert rows == [("reviews", "llm", pytest.approx(0.75))]
    assert [r.getMessage() for r in caplog.records] == ["off-label: for 4 of 8 inputs no label word"]
