"""Summarise a `fute transfer` truth file: per target, accuracy alone, mean gain per source group, best source.

python experiments/transfer_table.py docs/results/transfer/truth.csv
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

from fute_kit_hf.datasets import builtin_zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("truth", help="truth.csv written by fute transfer")
    args = parser.parse_args()
    group = {name: task.group for name, task in builtin_zoo().items()}
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with open(args.truth, newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["target"]].append(row)
    groups = sorted({group.get(r["candidate"], "?") for rs in rows.values() for r in rs})
    gains = " | ".join(f"mean gain from {g}" for g in groups)
    print(f"| target (group) | sources | alone | {gains} | best source (gain ± sd) |")
    print("|---|---:|---:|" + "---:|" * len(groups) + "---|")
    for target, rs in rows.items():
        by_group: dict[str, list[float]] = defaultdict(list)
        for r in rs:
            by_group[group.get(r["candidate"], "?")].append(float(r["score"]))
        best = max(rs, key=lambda r: float(r["score"]))
        means = [f"{sum(v) / len(v):+.3f}" if (v := by_group.get(g)) else "" for g in groups]
        print(
            f"| {target} ({group.get(target, '?')}) | {len(rs)} | {float(rs[0]['accuracy_alone']):.3f} | "
            + " | ".join(means)
            + f" | {best['candidate']} ({float(best['score']):+.3f} ± {float(best['sd']):.3f}) |"
        )


if __name__ == "__main__":
    main()
