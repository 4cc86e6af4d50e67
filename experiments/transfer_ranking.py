"""One table of source-ranking results: several `fute evaluate` outputs (a space and a route each) side by side.

python experiments/transfer_ranking.py "taskemb, DTE route=runs/eval/taskemb-dte/evaluation.json" ...

Each argument is LABEL=PATH to an evaluation.json. A row per labelled ranking (the embedding), then the
baselines of the first file (random as its exact expectation, source size, TextEmb when `--textemb` was given):
mean over targets with the bootstrap interval over targets, and the difference from random with its interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = ("ndcg@3", "spearman", "regret@1", "top1", "best_rank")


def cell(result: dict[str, Any], name: str, metric: str) -> str:
    mean = result["mean"][name].get(metric)
    if mean is None:
        return ""
    interval = result.get("intervals", {}).get(name, {}).get(metric)
    text = f"{mean:.2f}"
    return f"{text} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else text


def difference(result: dict[str, Any], name: str) -> str:
    interval = result.get("intervals", {}).get(name, {}).get("ndcg@3 - random")
    if not interval or name == "random":
        return ""
    delta = result["mean"][name]["ndcg@3"] - result["mean"]["random"]["ndcg@3"]
    return f"{delta:+.2f} [{interval[0]:+.2f}, {interval[1]:+.2f}]"


def row(label: str, result: dict[str, Any], name: str) -> str:
    targets = result["mean"][name].get("targets", "")
    cells = [cell(result, name, metric) for metric in COLUMNS]
    return f"| {label} | {targets} | " + " | ".join([*cells[:1], difference(result, name), *cells[1:]]) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evaluations", nargs="+", help="LABEL=PATH of an evaluation.json written by fute evaluate")
    args = parser.parse_args()
    results = []
    for item in args.evaluations:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: give LABEL=PATH (for example 'taskemb, DTE route=runs/eval/evaluation.json')")
        results.append((label, json.loads(Path(path).read_text())))
    print("| ranking | targets | NDCG@3 | NDCG@3 − random | Spearman | regret@1 | top-1 | rank of the best source |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, result in results:
        print(row(label, result, "embedding"))
    first = results[0][1]
    for name in first["mean"]:
        if name != "embedding":
            print(row(f"baseline: {name}", first, name))


if __name__ == "__main__":
    main()
