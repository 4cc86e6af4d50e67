"""MDL prompt selection (Wu et al. 2023) on hand-computed predictions: each prompt's share of the inputs on which
its prediction has the lowest entropy among its LLM's prompts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fute_kit import EmbeddingStore, Examples, Provenance, Space, TaskEmbedding
from fute_kit.label_free import label_free_scores, mdl_shares
from fute_kit.predictions import PredictionCache
from fute_kit.selection import open_study

SPACE = Space("none", "label-stats", {"buckets": 3, "seed": 0})


def put_model(root: Path, subject: str, probs: list[list[float]], names: tuple[str, ...]) -> None:
    key = f"fp-{subject.replace('/', '-')}"
    inputs = Examples(texts=[f"text {i}" for i in range(len(probs))])
    PredictionCache(root / "predictions").put(key, inputs, inputs.with_predictions(np.array(probs), "soft", names))
    provenance = Provenance(data_fingerprint=key, n_examples=len(probs), created="2026-01-01")
    vector = np.array(probs).mean(axis=0)
    EmbeddingStore(root / "embeddings").put(TaskEmbedding(vector, "model", subject, SPACE, provenance))


def test_mdl_shares_hand_computed() -> None:
    # Entropies per input (prompts x inputs): a = [H(.9), H(.5), H(.7)], b = [H(.6), H(.5), H(.99)], c = [H(.8)...]
    probs = np.array(
        [
            [[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]],
            [[0.6, 0.4], [0.5, 0.5], [0.99, 0.01]],
            [[0.2, 0.8], [0.5, 0.5], [0.4, 0.6]],
        ]
    )
    # Input 0: a is the most confident. Input 1: all three tie (a third each). Input 2: b.
    assert mdl_shares(probs) == pytest.approx([(1 + 1 / 3) / 3, (1 / 3 + 1) / 3, (1 / 3) / 3])
    assert sum(mdl_shares(probs)) == pytest.approx(1.0)


def test_mdl_in_label_free_scores(tmp_path: Path) -> None:
    put_model(tmp_path, "L/sure", [[1.0, 0.0], [0.6, 0.4]], ("neg", "pos"))
    put_model(tmp_path, "L/unsure", [[0.5, 0.5], [0.8, 0.2]], ("neg", "pos"))
    # Columns in the other order do not change the entropies.
    put_model(tmp_path, "L/other", [[0.3, 0.7], [0.1, 0.9]], ("pos", "neg"))
    put_model(tmp_path, "M/alone", [[0.5, 0.5], [0.5, 0.5]], ("neg", "pos"))  # no ensemble: no MDL choice
    scores = label_free_scores(open_study(tmp_path))
    # Input 0: "sure" (entropy 0). Input 1: "other" (0.9 beats 0.8 and 0.6).
    assert scores["mdl"] == pytest.approx({"model:L/sure": 0.5, "model:L/unsure": 0.0, "model:L/other": 0.5})
    # Averaged over the dataset, MDL's codelength is LE's: minus the mean entropy.
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    assert scores["neg_mean_entropy"]["model:L/unsure"] == pytest.approx(-(math.log(2) + h(0.8)) / 2)
