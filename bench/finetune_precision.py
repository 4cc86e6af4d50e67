"""Fine-tuning a classifier in float32 against bfloat16 autocast (``precision = "auto"``): time and test accuracy.

    .venv/bin/python bench/finetune_precision.py [--train 320] [--test 200] [--epochs 2] [--seeds 0 1]

The recipe is `fute demo`'s classifiers' (MiniLM, batch 32, lr 2e-4, the demo's four datasets). Both precisions
run in one process, alternating, so that a shared machine slows both alike; the table gives each run's seconds,
the ratio, and the test accuracies (which must agree within seed noise for the option to be worth having).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

DATASETS = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")


def timed_run(dataset: str, args: argparse.Namespace, precision: str, seed: int) -> tuple[float, float]:
    """Seconds and test accuracy of one fine-tuning."""
    from fute_kit.api import load_dataset
    from fute_kit_hf.finetune import finetune_and_score

    train = load_dataset("builtin", dataset=dataset, split="train", limit=args.train)
    test = load_dataset("builtin", dataset=dataset, split="test", limit=args.test)
    started = time.perf_counter()
    metrics = finetune_and_score(train, test, "minilm", epochs=args.epochs, seed=seed, precision=precision)
    return time.perf_counter() - started, metrics["eval_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=320)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-finetune-precision.md"))
    args = parser.parse_args()
    rows, totals = [], {"fp32": 0.0, "auto": 0.0}
    for dataset in DATASETS:
        for seed in args.seeds:
            result = {}
            for precision in ("fp32", "auto") if seed % 2 == 0 else ("auto", "fp32"):
                result[precision] = timed_run(dataset, args, precision, seed)
                totals[precision] += result[precision][0]
            (t32, a32), (tb, ab) = result["fp32"], result["auto"]
            rows.append(f"| {dataset} | {seed} | {t32:.1f} | {tb:.1f} | {t32 / tb:.2f}x | {a32:.3f} | {ab:.3f} |")
            print(rows[-1], flush=True)
    command = "python bench/finetune_precision.py " + " ".join(
        f"--{k} {v}" if k != "seeds" else "--seeds " + " ".join(map(str, v))
        for k, v in vars(args).items()
        if k != "out"
    )
    text = "\n".join(
        [
            "# Fine-tuning: float32 vs bfloat16 autocast",
            "",
            f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
            f"{os.getloadavg()[0]:.1f} at the end)",
            "",
            "| dataset | seed | fp32 s | auto s | speed-up | fp32 test accuracy | auto test accuracy |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f'All runs: {totals["fp32"]:.0f} s in float32, {totals["auto"]:.0f} s with `precision = "auto"`: '
            f"**{totals['fp32'] / totals['auto']:.2f}x**.",
            "",
        ]
    )
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
