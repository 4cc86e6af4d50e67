"""experiments/prompt_selection_table.py on hand-made evaluations and similarity matrices (no model runs)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture(scope="module")
def table(load_experiment: Callable[[str], ModuleType]) -> ModuleType:
    return load_experiment("prompt_selection_table")


def evaluation(spearman: dict[str, dict[str, float]]) -> dict[str, Any]:
    """An evaluation.json's shape: {target: {ranking: spearman}}."""
    targets = [{"target": t, "results": {n: {"spearman": v} for n, v in r.items()}} for t, r in spearman.items()]
    return {"targets": targets, "mean": {name: {} for name in next(iter(spearman.values()))}}


def test_an_embedding_is_paired_with_the_best_baseline_by_dataset_across_seed_folders(table: ModuleType) -> None:
    first = evaluation({
        "dataset:a @ seed-0": {"embedding": 0.2, "mi": 0.6, "random": 0.0},
        "dataset:a @ seed-1": {"embedding": 0.4, "mi": 0.6, "random": 0.0},
        "dataset:b @ seed-0": {"embedding": 0.9, "mi": 0.1, "random": 0.0},
        "dataset:b @ seed-1": {"embedding": 0.7, "mi": 0.1, "random": 0.0},
    })  # fmt: skip
    other = evaluation({"dataset:a @ tupate-s0": {"embedding": 0.5}, "dataset:b @ tupate-s0": {"embedding": 0.3}})
    lines = table.mean_rows({"taskemb": first, "tupate": other})
    assert "Spearman − mi (paired)" in lines[0]  # mi is the best label-free baseline (0.35 against random's 0)
    rows = {line.split(" | ")[0].removeprefix("| "): line.split(" | ") for line in lines[2:]}
    assert rows["taskemb"][3].startswith("+0.20")  # (0.2-0.6 + 0.4-0.6 + 0.9-0.1 + 0.7-0.1) / 4
    assert rows["tupate"][3].startswith("+0.05")  # other folders, paired by dataset: (0.5-0.6 + 0.3-0.1) / 2
    assert rows["baseline: mi"][3] == ""  # only the embeddings are paired


def write_matrix(path: Path, labels: list[str], values: dict[tuple[str, str], float]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", *labels])
        for a in labels:
            writer.writerow([a, *(1.0 if a == b else values.get((a, b), values.get((b, a), 0.0)) for b in labels)])
    return str(path)


def test_reference_rows_rank_by_similarity_to_the_dte_and_to_the_classifier(table: ModuleType, tmp_path: Path) -> None:
    accuracy = tmp_path / "accuracy.csv"
    accuracy.write_text("target,candidate,score\na,llm/good,0.9\na,llm/fair,0.6\na,llm/poor,0.2\n")
    labels = ["dataset:a", "model:clf-a", "model:llm/good", "model:llm/fair", "model:llm/poor"]
    sims = {("dataset:a", "model:llm/good"): 0.1, ("dataset:a", "model:llm/fair"): 0.2}
    sims |= {("dataset:a", "model:llm/poor"): 0.3, ("model:clf-a", "model:llm/good"): 0.8}
    sims |= {("model:clf-a", "model:llm/fair"): 0.5, ("model:clf-a", "model:llm/poor"): 0.4}
    matrix = write_matrix(tmp_path / "similarity.csv", labels, sims)
    rows = table.reference_rows(str(accuracy), [matrix])
    assert rows[2] == "| a | 3 | -1.00 | +1.00 |"  # the DTE ranks the prompts backwards, the classifier right
    without = write_matrix(tmp_path / "no-clf.csv", [label for label in labels if "clf" not in label], sims)
    assert table.reference_rows(str(accuracy), [without])[2] == "| a | 3 | -1.00 | not embedded |"
