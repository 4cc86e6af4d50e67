"""Summarise a `fute transfer` truth file: per target, accuracy alone, mean gain per source group, best source.

python experiments/transfer_table.py docs/results/transfer/truth.csv [--runs docs/results/transfer/runs.csv]

With --runs, also how reliable the truth is: each seed's gains used as a ranking of the sources, scored against
the mean gains of the other seeds (NDCG@3, Spearman; random for comparison), over the complete targets.
A source ranking cannot be expected to agree with the truth much better than one seed agrees with the others.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

from fute_kit_hf.datasets import builtin_zoo

K = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("truth", help="truth.csv written by fute transfer")
    parser.add_argument("--runs", help="runs.csv written by fute transfer: add the seeds' agreement")
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

    if args.runs:
        print()
        most = max(len(rs) for rs in rows.values())  # complete targets only: a partial row ranks fewer sources
        print(seed_agreement_text(args.runs, {t for t, rs in rows.items() if len(rs) == most}))


def seed_agreement(runs_csv: str, targets: set[str] | None = None) -> dict[str, float]:
    """Each seed's gains as a ranking of a target's sources, scored against the mean of the other seeds': the
    mean metrics over target x seed (``random_ndcg@3``: random's on the same truths), the ``rankings`` counted.

    The oracle a ranking can be held to: the truth measured once more. ``targets``: these only (default: all).
    """
    import numpy as np

    from fute_kit.ranking_metrics import random_scores, ranking_scores

    gains: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    with open(runs_csv, newline="") as handle:
        for r in csv.DictReader(handle):
            if targets is None or r["target"] in targets:
                gains[r["target"]][r["source"]][r["seed"]] = float(r["score_after"]) - float(r["score_alone"])
    scores: dict[str, list[float]] = defaultdict(list)
    for sources in gains.values():
        names = sorted(sources)
        for seed in sorted({s for by_seed in sources.values() for s in by_seed}):
            one = np.array([sources[n][seed] for n in names])
            rest = np.array([np.mean([g for s, g in sources[n].items() if s != seed]) for n in names])
            for key, value in ranking_scores(one, rest, K, "minmax").to_dict(K).items():
                scores[key].append(np.nan if value is None else value)
            scores[f"random_ndcg@{K}"].append(random_scores(rest, K, "minmax").ndcg_at_k)
    return {key: float(np.nanmean(values)) for key, values in scores.items()} | {"rankings": len(scores["spearman"])}


def seed_agreement_text(runs_csv: str, targets: set[str]) -> str:
    means = seed_agreement(runs_csv, targets)
    return (
        f"Seeds' agreement ({means['rankings']} target x seed rankings): one seed's gains rank the sources against "
        f"the other seeds' mean at NDCG@{K} {means[f'ndcg@{K}']:.2f} (random {means[f'random_ndcg@{K}']:.2f}), "
        f"Spearman {means['spearman']:.2f}, top-1 {means['top1']:.2f}."
    )


if __name__ == "__main__":
    main()
