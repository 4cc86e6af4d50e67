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

`--nearest accuracy.csv SIM.csv [SIM.csv ...]` instead prints issue 5's claim from similarity matrices (one per
seed, as `fute run` writes them): for each dataset of the truth, how many of its prompts (its candidates there)
have their MTE nearest that dataset's DTE among the DTEs, per seed, the mean margin (own minus best other), and
the same for models named `clf-DATASET` (fine-tuned classifiers: the reference).

`--reference accuracy.csv SIM.csv [SIM.csv ...]` prints, per dataset (mean over the matrices), the Spearman of its
prompts' accuracies with their similarity to its DTE (the ranking judged above) and with their similarity to its
classifier's MTE (`clf-DATASET`, on the same U as the prompts): not a label-free ranking (the classifier was
trained on labels), but it separates what the space can tell apart from what the DTE's other inputs cost.
"""

from __future__ import annotations

import argparse
import csv
from typing import Any

from transfer_ranking import labelled  # beside this script

from fute_kit.ranking_metrics import bootstrap_interval, spearman

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


def rankings(results: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any], str]]:
    """(row label, evaluation, ranking name): each file's embedding, then every baseline of the first file."""
    first = next(iter(results.values()))
    rows = [(label, result, "embedding") for label, result in results.items()]
    return rows + [(f"baseline: {name}", first, name) for name in first["mean"] if name != "embedding"]


def mean_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    best = best_label_free(first)
    lines = [
        f"| ranking | targets | Spearman | Spearman − {best} (paired) | top-1 | regret@1 (%) | NDCG@3 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    # Paired by dataset: an evaluation's targets are `dataset @ seed folder`, and the seed folders of the spaces
    # differ; the label-free baselines do not depend on the method's seed (their mean over seeds is their value).
    reference = by_dataset(per_target(first, best, "spearman"))
    for label, result, name in rankings(results):
        spearman = per_target(result, name, "spearman")
        paired = [v - reference[dataset_of(t)] for t, v in spearman.items() if dataset_of(t) in reference]
        paired = paired if name == "embedding" else []
        cells = [mean_cell(list(per_target(result, name, m).values())) for m in METRICS[1:]]
        lines.append(
            f"| {label} | {len(spearman)} | {mean_cell(list(spearman.values()), interval=True)} | "
            f"{mean_cell(paired, interval=True, signed=True)} | " + " | ".join(cells) + " |"
        )
    return lines


def dataset_of(target: str) -> str:
    return target.split(" @ ")[0].removeprefix("dataset:")


def by_dataset(values: dict[str, float]) -> dict[str, float]:
    """target (x seed) -> value as dataset -> the mean value over its seeds."""
    grouped: dict[str, list[float]] = {}
    for target, value in values.items():
        grouped.setdefault(dataset_of(target), []).append(value)
    return {dataset: sum(v) / len(v) for dataset, v in grouped.items()}


def dataset_rows(results: dict[str, dict[str, Any]]) -> list[str]:
    first = next(iter(results.values()))
    datasets = sorted({dataset_of(t["target"]) for t in first["targets"]})
    lines = ["| ranking | " + " | ".join(datasets) + " |", "|---|" + "---:|" * len(datasets)]
    for label, result, name in rankings(results):
        spearman = per_target(result, name, "spearman")
        cells = []
        for dataset in datasets:
            cells.append(mean_cell([v for t, v in spearman.items() if dataset_of(t) == dataset]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def read_matrix(path: str) -> dict[str, dict[str, float]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return {row[0]: dict(zip(rows[0][1:], map(float, row[1:]), strict=True)) for row in rows[1:]}


def nearest_rows(accuracy_csv: str, matrices: list[str]) -> list[str]:
    """Per dataset and seed: its prompts (and its classifier) whose MTE is nearest its DTE, and the margin."""
    with open(accuracy_csv, newline="") as handle:
        own = {f"model:{r['candidate']}": r["target"] for r in csv.DictReader(handle)}
    datasets = sorted(set(own.values()))
    seeds = [read_matrix(path) for path in matrices]
    lines = [
        "| dataset | " + " | ".join(f"prompts, seed {i}" for i in range(len(matrices))) + " | mean margin | "
        "classifier (all seeds) |",
        "|---|" + "---:|" * (len(matrices) + 2),
    ]
    for dataset in datasets:
        cells, margins, reference = [], [], []
        for matrix in seeds:
            dtes = [label for label in matrix if label.startswith("dataset:")]
            members = [m for m, d in own.items() if d == dataset and m in matrix]
            hits = 0
            for model in [*members, f"model:clf-{dataset}"]:
                if model not in matrix:
                    continue
                other = max(matrix[model][d] for d in dtes if d != f"dataset:{dataset}")
                margin = matrix[model][f"dataset:{dataset}"] - other
                if model in members:
                    hits, margins = hits + (margin > 0), [*margins, margin]
                else:
                    reference.append(margin > 0)
            cells.append(f"{hits}/{len(members)}")
        found = f"{sum(reference)}/{len(reference)}" if reference else "not embedded"
        lines.append(f"| {dataset} | " + " | ".join(cells) + f" | {mean_cell(margins, signed=True)} | {found} |")
    return lines


def reference_rows(accuracy_csv: str, matrices: list[str]) -> list[str]:
    """Per dataset: Spearman of accuracy with similarity to the DTE and to the classifier's MTE, mean over seeds."""
    with open(accuracy_csv, newline="") as handle:
        truth = {f"model:{r['candidate']}": (r["target"], float(r["score"])) for r in csv.DictReader(handle)}
    seeds = [read_matrix(path) for path in matrices]
    lines = [
        "| dataset | prompts | similarity to its DTE | similarity to its classifier's MTE |",
        "|---|---:|---:|---:|",
    ]
    for dataset in sorted({d for d, _ in truth.values()}):
        by_reference: dict[str, list[float]] = {f"dataset:{dataset}": [], f"model:clf-{dataset}": []}
        for matrix in seeds:
            members = [m for m, (d, _) in truth.items() if d == dataset and m in matrix]
            for reference, values in by_reference.items():
                if reference in matrix:
                    rho = spearman([matrix[m][reference] for m in members], [truth[m][1] for m in members])
                    values += [] if rho is None else [rho]
        cells = [mean_cell(values, signed=True) or "not embedded" for values in by_reference.values()]
        lines.append(f"| {dataset} | {len(members)} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="*", help="LABEL=PATH of an evaluation.json written by fute evaluate")
    parser.add_argument("--nearest", nargs="+", metavar="FILE", help="accuracy.csv, then similarity.csv per seed")
    parser.add_argument("--reference", nargs="+", metavar="FILE", help="accuracy.csv, then similarity.csv per seed")
    args = parser.parse_args()
    if args.reference:
        if len(args.reference) < 2:
            parser.error("--reference needs the truth (accuracy.csv) and at least one similarity.csv")
        print("\n".join(reference_rows(args.reference[0], args.reference[1:])))
        return
    if args.nearest:
        if len(args.nearest) < 2:
            parser.error("--nearest needs the truth (accuracy.csv) and at least one similarity.csv")
        print("\n".join(nearest_rows(args.nearest[0], args.nearest[1:])))
        return
    if not args.evaluations:
        parser.error("give LABEL=PATH of at least one evaluation.json, or --nearest")
    results = labelled(args.evaluations, parser)
    print("\n".join(mean_rows(results)))
    print("\nSpearman per dataset (mean over seeds):\n")
    print("\n".join(dataset_rows(results)))


if __name__ == "__main__":
    main()
