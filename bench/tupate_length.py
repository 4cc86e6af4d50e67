"""Does a shorter soft prompt find the same tasks? tupate at two prompt lengths, a few seeds, a small size.

Two disjoint halves (A: even rows, B: odd rows) of a sample of each builtin labelled dataset are embedded with
tupate's defaults except the length and the small-size options below; each half should be nearest to its own
other half under the default metric (cosine of the mean over positions of the contrast). Printed: top-1 and
margin per length, and how much the 28 pairwise similarities' ranking changes with the length (same seed)
against how much it changes with the seed (same length). Embeddings are kept in ``--out`` (one JSON per length
and seed), so an interrupted run resumes and a finished one only prints the table.

    .venv/bin/python bench/tupate_length.py --out runs/tupate-length            # lengths 16 and 8, seeds 0 1 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATASETS = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")
Embeddings = dict[str, np.ndarray]  # "dataset/A" -> the contrast's mean over positions


def embed_halves(args: argparse.Namespace, length: int, seed: int) -> Embeddings:
    """Both halves of every dataset at one length and seed, from ``--out`` when already computed."""
    path = Path(args.out) / f"L{length}-n{args.n}-s{seed}.json"
    done: dict[str, list[list[float]]] = json.loads(path.read_text()) if path.exists() else {}
    if len(done) < 2 * len(DATASETS):
        from fute_kit.atomic import atomic_write_text
        from fute_kit.components import RunContext
        from fute_kit_hf.datasets import BuiltinDataset
        from fute_kit_tupate.method import TuPaTE

        context = RunContext(show_progress=False)
        method = TuPaTE(
            length=length, epochs=args.epochs, batch_size=16, max_length=args.max_length, seed=seed, device="cpu"
        )
        for name in DATASETS:
            examples = BuiltinDataset(dataset=name, limit=2 * args.n).load(context)
            for half, first in (("A", 0), ("B", 1)):
                if f"{name}/{half}" not in done:
                    result = method.embed(examples.select(np.arange(first, 2 * args.n, 2)), "minilm", context)
                    done[f"{name}/{half}"] = np.asarray(result.array).tolist()
                    atomic_write_text(path, json.dumps(done))
                    print(f"length {length} seed {seed}: {name}/{half} embedded", flush=True)
    return {key: np.asarray(value).mean(axis=0) for key, value in done.items()}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norms if norms else 0.0  # a null task's contrast is zero: similar to nothing


def retrieval(embeddings: Embeddings) -> tuple[int, list[float]]:
    """Top-1 hits of each half against the other halves, and each margin (own minus best other)."""
    hits, margins = 0, []
    for name in DATASETS:
        for query, target in (("A", "B"), ("B", "A")):
            sims = {other: cosine(embeddings[f"{name}/{query}"], embeddings[f"{other}/{target}"]) for other in DATASETS}
            best_other = max((other for other in DATASETS if other != name), key=sims.__getitem__)
            hits += max(sims, key=sims.__getitem__) == name
            margins.append(sims[name] - sims[best_other])
    return hits, margins


def pairwise(embeddings: Embeddings) -> list[float]:
    return [cosine(embeddings[a], embeddings[b]) for a, b in itertools.combinations(sorted(embeddings), 2)]


def table(args: argparse.Namespace, runs: dict[tuple[int, int], Embeddings]) -> str:
    from scipy.stats import spearmanr

    reference = args.lengths[0]
    lines = [
        f"| length | half -> its other half, top-1 ({len(args.seeds)} seeds x 8) | mean margin (own - best other) "
        f"| Spearman of the pairwise similarities vs length {reference}, same seed "
        "| the same between seeds, same length |",
        "|---:|---:|---:|---|---|",
    ]
    for length in args.lengths:
        results = [retrieval(runs[length, seed]) for seed in args.seeds]
        hits = sum(h for h, _ in results)
        margin = float(np.mean([m for _, margins in results for m in margins]))
        rho = [spearmanr(pairwise(runs[reference, s]), pairwise(runs[length, s])).correlation for s in args.seeds]
        noise = [
            spearmanr(pairwise(runs[length, s]), pairwise(runs[length, t])).correlation
            for s, t in itertools.combinations(args.seeds, 2)
        ]
        versus = "(itself)" if length == reference else ", ".join(f"{x:.2f}" for x in rho)
        lines.append(
            f"| {length} | {hits}/{8 * len(args.seeds)} | {margin:+.3f} | {versus} | "
            + ", ".join(f"{x:.2f}" for x in noise)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder of the embeddings (kept: a rerun resumes)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 8], help="the first is the reference")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=48, help="examples per half")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=48)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("give at least two --seeds: the seed-to-seed change is the yardstick")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    runs = {(length, seed): embed_halves(args, length, seed) for length in args.lengths for seed in args.seeds}
    print(table(args, runs))


if __name__ == "__main__":
    main()
