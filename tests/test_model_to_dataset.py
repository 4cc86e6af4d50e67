"""experiments/model_to_dataset.py's controls and seed stability, on hand-made embeddings (no model runs)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from toy_plugins import ToyPlugin

from fute_kit import Provenance, Space, TaskEmbedding
from fute_kit.examples import Examples
from fute_kit.similarity import SimilarityMatrix
from fute_kit.testing import make_registry


@pytest.fixture(scope="module")
def m2d(load_experiment: Callable[[str], ModuleType]) -> ModuleType:
    return load_experiment("model_to_dataset")


def test_shuffled_labels_keep_texts_classes_and_balance_but_not_the_pairing(m2d: ModuleType) -> None:
    texts = [f"text {i}" for i in range(200)]
    labels = ["a" if i % 4 else "b" for i in range(200)]
    examples = Examples.from_hard_labels(texts, labels)
    shuffled = m2d.shuffled_labels(examples, seed=0)
    assert shuffled.texts == examples.texts and shuffled.label_names == examples.label_names
    assert np.array_equal(np.bincount(shuffled.labels), np.bincount(examples.labels))
    assert np.mean(shuffled.labels == examples.labels) < 0.8  # 0.625 expected by chance
    assert np.array_equal(m2d.shuffled_labels(examples, seed=0).labels, shuffled.labels)  # a fixed permutation
    assert shuffled.fingerprint() != examples.fingerprint()  # its own fine-tuning, never the classifier's cache


def test_retrieval_rows_name_every_kind_of_control(m2d: ModuleType) -> None:
    labels = ["dataset:x-a", "dataset:y", *(f"model:{kind}-x-a" for kind in m2d.KINDS)]
    values = np.eye(len(labels))
    values[2:, 0] = values[0, 2:] = [0.5, 0.0, 0.1, 0.2]  # own DTE x-a
    values[2:, 1] = values[1, 2:] = [0.2, 0.0, 0.3, 0.1]  # the other DTE y
    rows = {r["kind"]: r for r in m2d.retrieval_rows(SimilarityMatrix(labels, values), seed=3)}
    assert set(rows) == set(m2d.KINDS.values())
    assert rows["classifier"]["correct"] and rows["classifier"]["margin"] == pytest.approx(0.3)
    assert not rows["prior-only"]["correct"]  # a tie (a zero embedding) is not a hit
    assert rows["random-head"]["top1"] == "y" and rows["random-head"]["margin"] == pytest.approx(-0.2)
    assert rows["shuffled-labels"]["correct"] and rows["shuffled-labels"]["seed"] == 3
    summary = m2d.retrieval_summary(list(rows.values()))
    assert [(r["kind"], r["seed"], r["top1"]) for r in summary][:2] == [
        ("classifier", 3, "1/1"),
        ("classifier", "all", "1/1"),
    ]
    assert next(r for r in summary if r["kind"] == "random-head")["mean_margin"] == pytest.approx(-0.2)


def test_seed_stability_compares_within_the_group_and_against_every_embedding(m2d: ModuleType) -> None:
    registry = make_registry(ToyPlugin())
    rng = np.random.default_rng(0)
    base = {name: rng.normal(size=8) for name in ("clf-a", "clf-b", "random-a", "random-b", "d")}
    base["d"] = base["clf-a"] + 0.05 * rng.normal(size=8)  # a DTE almost the same as clf-a's MTE
    embeddings = []
    for seed in (0, 1):
        space = Space("none", "label-stats", {"seed": seed})
        for name, vector in base.items():
            kind, subject = ("dataset", "a") if name == "d" else ("model", name)
            array = vector + 0.2 * rng.normal(size=8)
            provenance = Provenance(data_fingerprint=f"{name}{seed}", n_examples=1, seconds=0.0)
            embeddings.append(TaskEmbedding(array, kind, subject, space, provenance))
    rows = m2d.seed_stability(embeddings, registry)
    groups = {(r["subject"], r["group"]) for r in rows}
    assert ("clf-a", "classifier") in groups and ("random-b", "random-head") in groups
    clf_a = [r for r in rows if r["subject"] == "clf-a"]
    assert all(r["stable"] for r in clf_a)  # against clf-b only
    assert not any(r["stable_all"] for r in clf_a)  # the DTE, another group, is nearer than its other seed
    assert all(r["other_max"] >= r["kind_max"] for r in rows)
    assert not any(r["subject"] == "a" for r in rows)  # one DTE: no other subject of its group to compare
