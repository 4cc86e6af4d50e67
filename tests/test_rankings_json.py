"""rankings.json: written one label per line with the C encoder, and the same JSON as ``rankings()``."""

from __future__ import annotations

import json

import numpy as np

from fute_kit.similarity import SimilarityMatrix


def test_rankings_json_is_the_rankings_one_label_per_line() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(7, 7))
    labels = [f"dataset:d{i}" for i in range(4)] + [f'model:m "{i}"' for i in range(3)]  # a quote, escaped
    matrix = SimilarityMatrix(labels, values)
    text = matrix.rankings_json()
    assert json.loads(text) == matrix.rankings()
    assert len(text.splitlines()) == len(labels) + 2
    for i, label in enumerate(labels):
        ranked = json.loads(text)[label]
        assert [r["name"] for r in ranked] == [labels[j] for j in np.argsort(-values[i], kind="stable") if j != i]


def test_rankings_json_of_an_empty_matrix_is_an_empty_object() -> None:
    assert json.loads(SimilarityMatrix([], np.zeros((0, 0))).rankings_json()) == {}
