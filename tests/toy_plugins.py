"""Throwaway plugins for the core's tests: a numpy-only method and metric, a model and a broken plugin."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from fute_kit import Examples, MethodResult, RunContext, hookimpl, option


@attrs.frozen
class LabelStats:
    """A toy method: mean one-hot/soft label per character-length bucket (numpy only)."""

    name = "label-stats"
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("dot", {})

    buckets: int = option(4, help="length buckets")
    seed: int = option(0, help="unused; part of the space like a real method's seed")
    compare_by: str = option("dot", help="the metric declared for these options (exercises metric_for)")

    @classmethod
    def metric_for(cls, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return options.get("compare_by", "dot"), {}

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        if examples.label_kind == "hard":
            probs = np.eye(examples.num_classes)[examples.labels]
        else:
            probs = np.asarray(examples.labels, dtype=np.float64)
        lengths = np.array([len(t) for t in examples.texts])
        bucket = np.minimum(lengths // 20, self.buckets - 1)
        rows = [
            probs[bucket == b].mean(axis=0) if np.any(bucket == b) else np.zeros(probs.shape[1])
            for b in range(self.buckets)
        ]
        return MethodResult(np.stack(rows), details={"surrogate_seen": surrogate})


@attrs.frozen
class Dot:
    """A toy metric: cosine of flattened arrays."""

    name = "dot"

    def matrix(self, arrays: list[np.ndarray]) -> np.ndarray:
        flat = np.stack([np.ravel(a) / (np.linalg.norm(a) or 1.0) for a in arrays])
        return flat @ flat.T


@attrs.frozen
class KeywordModel:
    """A toy model: 'positive' when the text contains the keyword."""

    name = "keyword"

    keyword: str = option(help="word that signals the positive class")
    fail: bool = option(False, help="raise instead of predicting (fault injection)")
    sureness: float = option(0.8, help="how far apart the two classes' probabilities are (0: uniform, 1: one-hot)")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        if self.fail:
            raise RuntimeError("model crashed on purpose")
        hit = np.array([self.keyword in t for t in inputs.texts], dtype=np.float64)
        positive = (1 - self.sureness) / 2 + self.sureness * hit
        probs = np.stack([1 - positive, positive], axis=1)
        return inputs.with_predictions(probs, "soft", ("negative", "positive"))


class ToyPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(LabelStats)

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(Dot, aliases=("toy-cosine",))

    @hookimpl
    def register_model_sources(self, register: Any) -> None:
        register(KeywordModel)


class BrokenPlugin:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        raise RuntimeError("this plugin is broken")


TEXTS = [
    "a good film",
    "bad acting throughout the whole long film",
    "good good good",
    "a bad day",
    "not good at all, sadly, a long and tedious story",
    "fine",
    "good fun for the family",
    "bad",
]
LABELS = ["positive", "negative", "positive", "negative", "negative", "positive", "positive", "negative"]
