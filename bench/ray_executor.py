"""A study of 8 independent DTEs on the local executor and on a local Ray with 2 workers, side by side.

    .venv/bin/python bench/ray_executor.py [--examples 96] [--out bench/RESULTS-ray.md]

Prints the wall time of each executor, their ratio, and the largest difference between the
embeddings the two produced (they must agree within float tolerance).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fute_kit.config import parse_config
from fute_kit.pipeline import run_study
from fute_kit.store import EmbeddingStore

DATASETS = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")


def study(examples: int, executor: dict | None) -> dict:
    config = {
        "space": {"surrogate": "minilm", "method": "taskemb", "options": {"epochs": 1, "seed": 0}},
        "datasets": [
            {"name": f"{d}-{part}", "source": "builtin", "dataset": d, "limit": examples, "seed": part}
            for d in DATASETS
            for part in (1, 2)
        ],
    }
    if executor:
        config["executor"] = executor
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=96, help="training examples per DTE")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-ray.md"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = Path(tempfile.mkdtemp(prefix="fute-bench-ray-"))
    timings = {}
    for label, executor in (
        ("local", None),
        ("ray, 2 workers", {"name": "ray", "num_cpus": 1, "local_num_cpus": 2}),
    ):
        started = time.perf_counter()
        result = run_study(parse_config(study(args.examples, executor)), root / label, show_progress=False)
        timings[label] = time.perf_counter() - started
        assert not result.failures, result.failures
    local = {e.label: e.array for e in EmbeddingStore(root / "local" / "embeddings").load_all()}
    remote = {e.label: e.array for e in EmbeddingStore(root / "ray, 2 workers" / "embeddings").load_all()}
    diff = max(float(np.max(np.abs(local[k] - remote[k]) / (np.abs(local[k]).max() + 1e-30))) for k in local)
    lines = [
        f"8 independent taskemb DTEs (MiniLM, {args.examples} examples each, 1 epoch), {os.cpu_count()} CPU cores",
        "",
        "| executor | wall time (s) | relative |",
        "|---|---|---|",
        *(f"| {k} | {v:.1f} | {v / timings['local']:.2f} |" for k, v in timings.items()),
        "",
        f"largest difference between the two executors' embeddings (relative to each embedding's max): {diff:.2e}",
        "",
        f"command: `.venv/bin/python bench/ray_executor.py --examples {args.examples}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
