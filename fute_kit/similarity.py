"""Similarity matrices and rankings over embeddings of one space."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_text
from fute_kit.embedding import TaskEmbedding, check_same_space


@attrs.frozen(eq=False)
class SimilarityMatrix:
    """A square similarity matrix with its row/column labels (``dataset:NAME``, ``model:NAME``)."""

    labels: tuple[str, ...] = attrs.field(converter=tuple)
    values: np.ndarray
    metric: str = ""

    def __attrs_post_init__(self) -> None:
        n = len(self.labels)
        if self.values.shape != (n, n):
            raise ValueError(f"similarity matrix of shape {self.values.shape} for {n} labels")

    def get(self, a: str, b: str) -> float:
        return float(self.values[self.labels.index(a), self.labels.index(b)])

    def rankings(self) -> dict[str, list[dict[str, Any]]]:
        """For every label, the others by decreasing similarity."""
        return {label: self.ranking(i) for i, label in enumerate(self.labels)}

    def ranking(self, i: int) -> list[dict[str, Any]]:
        """The others by decreasing similarity to label ``i``."""
        order = np.argsort(-self.values[i], kind="stable")
        return [{"name": self.labels[j], "similarity": float(self.values[i, j])} for j in order.tolist() if j != i]

    def rankings_json(self) -> str:
        """:meth:`rankings` as JSON, one label per line.

        Built one label at a time with the C encoder (``indent`` would use the pure-Python one): n^2 entries, so
        at 500 subjects this is what the similarity step's time and memory were spent on.
        """
        lines = (f"{json.dumps(label)}: {json.dumps(self.ranking(i))}" for i, label in enumerate(self.labels))
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["", *self.labels])
        for label, row in zip(self.labels, self.values, strict=True):
            writer.writerow([label, *(f"{v:.6f}" for v in row)])
        return buffer.getvalue()

    @classmethod
    def from_csv(cls, path: str | Path, metric: str = "") -> SimilarityMatrix:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        labels = rows[0][1:]
        values = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
        return cls(labels, values, metric)

    def write(self, csv_path: str | Path, rankings_path: str | Path | None = None) -> None:
        atomic_write_text(csv_path, self.to_csv())
        if rankings_path is not None:
            atomic_write_text(rankings_path, self.rankings_json())


def similarity_matrix(
    embeddings: Sequence[TaskEmbedding],
    metric: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    ignore_options: Iterable[str] = (),
    registry: Any = None,
) -> SimilarityMatrix:
    """Compare embeddings of one space with a registered metric.

    Without ``metric``, the metric the method declares (``default_metric``) is used.
    ``ignore_options`` allows comparing across spaces that differ only in those options
    (for example ``("seed",)`` for a seed-stability study).
    """
    from fute_kit.registry import get_registry

    registry = registry or get_registry()
    space = check_same_space(embeddings, ignore=ignore_options)
    if metric is None:
        metric, default_options = default_metric_for(space.method, registry, space.options)
        options = {**default_options, **dict(options or {})}
    component = registry.build("metric", metric, options)
    values = np.asarray(component.matrix([e.array for e in embeddings]), dtype=np.float64)
    return SimilarityMatrix([e.label for e in embeddings], values, metric)


def default_metric_for(
    method: str, registry: Any, method_options: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The metric (name, options) a method declares for its embeddings; cosine otherwise.

    A method whose right metric depends on its options (tupate: a contrast of two tuned prompts needs no
    centring, raw prompts do) declares a classmethod ``metric_for(options)``; else ``default_metric``.
    """
    if registry.has("method", method):
        cls = registry.get("method", method).cls
        chooser = getattr(cls, "metric_for", None)
        if callable(chooser):
            name, opts = chooser(dict(method_options or {}))
            return name, dict(opts)
        declared = getattr(cls, "default_metric", None)
        if declared:
            name, opts = declared
            return name, dict(opts)
    return "cosine", {}
