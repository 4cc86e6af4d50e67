"""The report's figures at many subjects (bench/study_load.py's 500): kinds instead of unreadable names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fute_kit_report import figures


def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Figures handed to ``_png`` (kept instead of rendered, so their artists can be inspected)."""
    kept: list[Any] = []
    monkeypatch.setattr(figures, "_png", lambda figure: kept.append(figure) or b"")
    return kept


def study(n: int) -> tuple[list[str], np.ndarray]:
    labels = [f"dataset:d{i}" if i % 2 else f"model:m{i}" for i in range(n)]
    vectors = np.random.default_rng(0).normal(size=(n, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return labels, vectors @ vectors.T


@pytest.mark.parametrize("n", [figures.NAMED_HEATMAP_MAX, figures.NAMED_HEATMAP_MAX + 1])
def test_heatmap_names_every_row_up_to_the_limit_and_shows_kind_strips_above(
    monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    kept = drawn(monkeypatch)
    labels, values = study(n)
    figures.heatmap_png(labels, values, "cosine")
    axes = kept[0].axes[0]
    names = [tick.get_text() for tick in axes.get_yticklabels()]
    if n <= figures.NAMED_HEATMAP_MAX:
        assert len(names) == n and len(axes.images) == 1
    else:
        assert names == [] and len(axes.images) == 3  # the matrix and the two kind strips
        strip = axes.images[1].get_array()
        assert strip.shape == (n, 1, 3)
        order = figures.cluster_order(values)
        expected = [figures.DATASET_COLOR if labels[i].startswith("dataset:") else figures.MODEL_COLOR for i in order]
        from matplotlib.colors import to_rgb

        assert np.allclose(strip[:, 0, :], [to_rgb(c) for c in expected])


def test_map_draws_one_collection_per_kind_not_per_point(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = drawn(monkeypatch)
    labels, _ = study(300)
    labels += ["model:llm-a/p1", "model:llm-b/p2"]
    coords = np.random.default_rng(1).normal(size=(len(labels), 2))
    figures.map_png(labels, coords, ("x", "y"))
    collections = kept[0].axes[0].collections
    assert len(collections) == 4  # datasets, models, and the prompts of each of two LLMs
    assert sum(len(c.get_offsets()) for c in collections) == len(labels)
