"""Prompt selection in tables: `fute evaluate` outputs (a space each) against every label-free baseline, per dataset.

python experiments/prompt_selection_table.py "taskemb=docs/results/prompts/evaluation-taskemb.json" \
    "tupate=docs/results/prompts/evaluation-tupate.json"

Each argument is LABEL=PATH to an evaluation.json (pooled over seeds with `fute evaluate --pool`: its targets are
named `dataset @ seed folder`). Prints
1. the mean over targets (x seeds) of Spearman, top-1, regret@1 (accuracy lost by the chosen prompt, in % of the
   best prompt's) and NDCG@3 for each labelled ranking and each baseline of the first file, with the bootstrap
   interval of the mean Spearman, and each embedding's paired Spearman difference from the best label-free
   baseline (the one with the highest mean Spearman; the issue's goal is a positive difference);
2. Spearman per dataset (mean over seeds) for the same rows: where a ranking wins and where it loses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fute_kit.ranking_metrics import bootstrap_interval

METRICS = ("spearman", "top1", "regret@1", "ndcg@3")
NOT_LABEL_FREE = ("embedding", "random", "size", "textemb")


def per_target(result: dict[str, Any], name: str, metric: str) -> dict[str, float]:
    """target (x seed) -> the ranking's ``metric`` there, where it is defined."""
    values = {t["target"]: t["results"].get(name, {}).get(metric) for t in result["targets"]}
    return {target: value for target, value in values.items() if value is not None}


def mean_cell(values: list[float], interval: bool = False, signed: bool = False) -> str:
    if not values:
        return ""
    form = "{:+.2f}" if signed else "{:.2f}"
    text = form.format(sum(values) / len(values))
    bounds = bootstrap_interval(values) if interval else None
    return f"{text} [{form.format(bounds[0])}, {form.format(bounds[1])}]" if bounds else text


def best_label_free(result: dict[str, Any]) -> str:
    names = [n for n in result["mean"] if n not in NOT_LABEL_FREE]
    return max(names, key=lambda n: sum(v := list(per_target(result, n, "spearman").values())) / max(len(v), 1))


def mean_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    best = best_label_free(first)
    lines = [
        f"| ranking | targets | Spearman | Spearman − {best} (paired) | top-1 | regret@1 (%) | NDCG@3 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(label, result, "embedding") for label, result in results.items()]
    rows += [(f"baseline: {name}", first, name) for name in first["mean"] if name != "embedding"]
    reference = per_target(first, best, "spearman")
    for label, result, name in rows:
        spearman = per_target(result, name, "spearman")
        paired = [spearman[t] - reference[t] for t in spearman if t in reference] if name == "embedding" else []
        cells = [mean_cell(list(per_target(result, name, m).values())) for m in METRICS[1:]]
        lines.append(
            f"| {label} | {len(spearman)} | {mean_cell(list(spearman.values()), interval=True)} | "
            f"{mean_cell(paired, interval=True, signed=True)} | " + " | ".join(cells) + " |"
        )
    return lines


def dataset_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    datasets = sorted({t["target"].split(" @ ")[0].removeprefix("dataset:") for t in first["targets"]})
    lines = ["| ranking | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    rows = [(label, result, "embedding") for label, result in results.items()]
    rows += [(f"baseline: {name}", first, name) for name in first["mean"] if name != "embedding"]
    for label, result, name in rows:
        spearman = per_target(result, name, "spearman")
        cells = []
        for dataset in datasets:
            mine = [v for t, v in spearman.items() if t.split(" @ ")[0].removeprefix("dataset:") == dataset]
            cells.append(mean_cell(mine))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="+", help="LABEL=PATH of an evaluation.json written by fute evaluate")
    args = parser.parse_args()
    results = {}
    for item in args.evaluations:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"{item!r}: give LABEL=PATH of an existing evaluation.json")
        results[label] = json.loads(Path(path).read_text())
    print("\n".join(mean_rows(results)))
    print("\nSpearman per dataset (mean over seeds):\n")
    print("\n".join(dataset_rows(results)))


if __name__ == "__main__":
    main()
