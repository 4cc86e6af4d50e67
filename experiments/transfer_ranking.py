"""One table of source-ranking results: several `fute evaluate` outputs (a space and a route each) side by side.

python experiments/transfer_ranking.py "taskemb, DTE route=runs/eval/taskemb-dte/evaluation.json" ...

Each argument is LABEL=PATH to an evaluation.json. A row per labelled ranking (the embedding), then the
baselines of the first file (random as its exact expectation, source size, TextEmb when `--textemb` was given):
mean over targets with the bootstrap interval over targets, and the paired differences from random and from TextEmb
(when the evaluation had `--textemb`) with their intervals.
`--regret LABEL=PATH` names the evaluation of the same ranking against `fute evaluate --truth-column
accuracy_after`: its regret@1 and @3 (accuracy lost against the best source's, in % of it: Poth et al. 2021) replace
those of the gains (a share of the best gain: undefined when every gain is negative).
`--oracle-runs runs.csv` adds the oracle a ranking can be held to: one seed's measured gains ranking the sources
against the other seeds' mean (the truth itself would score 1 by construction), over the first file's targets.
`--compare A B` (labels of two evaluations) adds the paired per-target difference A − B of NDCG@3 and Spearman
with its bootstrap interval: whether one route or space ranks better than another beyond chance.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = ("ndcg@3", "spearman", "top1", "best_rank")
REGRETS = ("regret@1", "regret@3")


def cell(result: dict[str, Any], name: str, metric: str) -> str:
    mean = result["mean"][name].get(metric)
    if mean is None:
        return ""
    interval = result.get("intervals", {}).get(name, {}).get(metric)
    text = f"{mean:.2f}"
    return f"{text} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else text


def difference(result: dict[str, Any], name: str, reference: str = "random") -> str:
    interval = result.get("intervals", {}).get(name, {}).get(f"ndcg@3 - {reference}")
    if not interval or name == reference:
        return ""
    delta = result["mean"][name]["ndcg@3"] - result["mean"][reference]["ndcg@3"]
    return f"{delta:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


def row(label: str, result: dict[str, Any], name: str, regret: dict[str, Any] | None) -> str:
    targets = result["mean"][name].get("targets", "")
    cells = [cell(result, name, metric) for metric in COLUMNS]
    regrets = [cell(regret or result, name, metric) for metric in REGRETS]
    differences = [difference(result, name), difference(result, name, "textemb")]
    return f"| {label} | {targets} | " + " | ".join([*cells[:1], *differences, *cells[1:], *regrets]) + " |"


def labelled(items: list[str], parser: argparse.ArgumentParser) -> dict[str, dict[str, Any]]:
    results = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            parser.error(f"{item!r}: give LABEL=PATH of an existing evaluation.json (for example "
                         "'taskemb, DTE route=runs/eval/evaluation.json')")  # fmt: skip
        results[label] = json.loads(Path(path).read_text())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="+", help="LABEL=PATH of an evaluation.json written by fute evaluate")
    parser.add_argument("--regret", action="append", default=[], help="LABEL=PATH evaluated on accuracy_after")
    parser.add_argument("--oracle-runs", help="runs.csv of fute transfer: add one seed's gains as the oracle row")
    parser.add_argument("--compare", nargs=2, action="append", default=[], metavar=("A", "B"), help="labels")
    args = parser.parse_args()
    results, regrets = labelled(args.evaluations, parser), labelled(args.regret, parser)
    for a, b in args.compare:
        if a not in results or b not in results:
            parser.error(f"--compare {a!r} {b!r}: both must be labels of the evaluations ({', '.join(results)})")
    regret_unit = "% of the best accuracy after" if regrets else "% of the best gain"
    print(
        "| ranking | targets | NDCG@3 | NDCG@3 − random | NDCG@3 − TextEmb | Spearman | top-1 "
        f"| rank of the best source | regret@1 ({regret_unit}) | regret@3 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, result in results.items():
        print(row(label, result, "embedding", regrets.get(label)))
    first_label, first = next(iter(results.items()))
    for name in first["mean"]:
        if name != "embedding":
            print(row(f"baseline: {name}", first, name, regrets.get(first_label)))
    if args.oracle_runs:
        print(oracle_row(args.oracle_runs, {t["target"].removeprefix("dataset:") for t in first["targets"]}))
    for a, b in args.compare:
        print(f"\n{a} − {b}: " + "; ".join(paired(results[a], results[b], m) for m in ("ndcg@3", "spearman")))


def paired(first: dict[str, Any], second: dict[str, Any], metric: str) -> str:
    """Mean per-target difference of ``metric`` over the targets both evaluations score, with its interval."""
    from fute_kit.ranking_metrics import bootstrap_interval

    def by_target(result: dict[str, Any]) -> dict[str, float]:
        scores = {t["target"]: t["results"]["embedding"].get(metric) for t in result["targets"]}
        return {target: value for target, value in scores.items() if value is not None}

    ones, others = by_target(first), by_target(second)
    diffs = [ones[t] - others[t] for t in ones if t in others]
    if not diffs:
        return f"{metric}: no target scored by both"
    interval = bootstrap_interval(diffs)
    shown = f" [{interval[0]:+.2f}, {interval[1]:+.2f}]" if interval else ""
    return f"{metric} {sum(diffs) / len(diffs):+.2f}{shown} over {len(diffs)} targets"


def oracle_row(runs_csv: str, targets: set[str]) -> str:
    from transfer_table import seed_agreement  # beside this script

    means = seed_agreement(runs_csv, targets)
    if not means["rankings"]:
        raise SystemExit(f"{runs_csv}: no runs of the evaluated targets {sorted(targets)}")
    cells = [f"{means[key]:.2f}" for key in ("spearman", "top1", "best_rank")]
    random_gap = f"{means['ndcg@3'] - means['random_ndcg@3']:+.2f}"
    label = f"oracle: one seed's gains vs the other seeds' mean ({means['rankings']} rankings)"
    return f"| {label} | {len(targets)} | {means['ndcg@3']:.2f} | {random_gap} |  | " + " | ".join(cells) + " |  |  |"


if __name__ == "__main__":
    main()
