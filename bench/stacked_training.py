"""Benchmark of stacked taskemb training (``TaskEmb.embed_group``) against one subject at a time (a script).

Reports, in one run on one device, with all-MiniLM-L6-v2 and builtin datasets of one number of classes:
- one at a time: each of max(K) subjects embedded by ``TaskEmb.embed`` in turn; embeddings per hour;
- stacked: for each K, the first K subjects embedded by one ``embed_group`` call; embeddings per hour and the
  speed-up over one at a time (goal on a GPU: >= 5x);
- agreement: the largest cosine distance (taskemb's default metric: rows normalised, then cosine) between a
  stacked member's embedding and its one-at-a-time twin, beside the seed-level yardstick (the distance between
  one-at-a-time embeddings of the first subject with seeds 0 and 1). Dropout masks differ between the two paths,
  so "equal" means: within the seed-level distance.

A warm-up embedding (not timed) loads the model and initialises the device first. Writes the table to
bench/RESULTS-stacked.md. On a GPU (the goal's conditions), e.g.:

    .venv/bin/python bench/stacked_training.py --examples 1000 --subjects 1,2,4,8
    .venv/bin/python bench/stacked_training.py --device cpu --examples 48 --epochs 1 --subjects 1,2,4   # small CPU run
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
CANDIDATES = (
    "rt-sentiment",
    "rt-subjectivity",
    "wiki-hedge",
    "imdb-sentiment",
    "yelp-sentiment",
    "amazon-sentiment",
    "tweet-device",
    "pl-review-sentiment",
    "convention-party",
    "drug-sentiment",
    "commons-side",
    "austen-dialogue",
)


def component_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1 - cosine after normalising each row: taskemb's default metric."""

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).ravel()

    ua, ub = unit(a.astype(np.float64)), unit(b.astype(np.float64))
    return max(0.0, float(1.0 - ua @ ub / max(1e-300, np.linalg.norm(ua) * np.linalg.norm(ub))))


def subjects(count: int, examples: int, context: Any) -> list[Any]:
    """``count`` builtin datasets with as many classes as the first one, ``examples`` each (fewer if smaller)."""
    from fute_kit_hf.datasets import BuiltinDataset

    chosen: list[Any] = []
    for name in CANDIDATES:
        data = BuiltinDataset(dataset=name, split=None).load(context)
        if chosen and data.num_classes != chosen[0].num_classes:
            continue
        chosen.append(data.sample(min(examples, len(data)), seed=1))
        if len(chosen) == count:
            return chosen
    raise SystemExit(f"only {len(chosen)} builtin datasets with {chosen[0].num_classes} classes; ask for fewer")


def sync(device: Any) -> None:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Any, device: Any) -> tuple[Any, float]:
    sync(device)
    started = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="examples per subject")
    parser.add_argument("--subjects", default="1,2,4,8", help="stack sizes K (subjects per embed_group call)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--contrast", default="prior", help="taskemb's contrast ('none': one training per subject)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--surrogate", default="minilm")
    parser.add_argument("--out", default=str(HERE / "RESULTS-stacked.md"))
    args = parser.parse_args()

    import transformers

    from fute_kit.components import RunContext
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_taskemb.method import TaskEmb

    transformers.utils.logging.set_verbosity_error()
    sizes = sorted({int(k) for k in args.subjects.split(",")})
    context = RunContext(show_progress=False)
    options = {"epochs": args.epochs, "batch_size": args.batch_size, "contrast": args.contrast, "device": args.device}
    method = TaskEmb(**options)
    device = load_surrogate(args.surrogate, args.device).device
    items = subjects(max(sizes), args.examples, context)
    method.embed(items[0].sample(min(32, len(items[0])), seed=2), args.surrogate, context)  # warm-up, not timed

    alone, seconds_alone = [], 0.0
    for item in items:
        result, seconds = timed(lambda item=item: method.embed(item, args.surrogate, context), device)
        alone.append(result.array)
        seconds_alone += seconds
    other_seed = TaskEmb(**{**options, "seed": 1}).embed(items[0], args.surrogate, context).array
    yardstick = component_distance(alone[0], other_seed)
    print(f"one at a time: {seconds_alone:.1f} s for {len(items)}; seed yardstick {yardstick:.2e}", flush=True)
    per_hour_alone = 3600 * len(items) / seconds_alone
    args.precision_used = getattr(method, "precision", "fp32")
    rows = []
    for k in sizes:
        results, seconds = timed(lambda k=k: method.embed_group(items[:k], args.surrogate, context), device)
        worst = max(component_distance(r.array, a) for r, a in zip(results, alone, strict=False))
        per_hour = 3600 * k / seconds
        rows.append(
            (k, results[0].details.get("stacked_members", 1), seconds, per_hour, per_hour / per_hour_alone, worst)
        )
        print(f"K={k}: {seconds:.1f} s, {per_hour:.0f}/h, x{per_hour / per_hour_alone:.2f}, max distance {worst:.2e}")
    write_table(args, device, items, seconds_alone, yardstick, rows)


def write_table(args: Any, device: Any, items: list[Any], seconds_alone: float, yardstick: float, rows: list) -> None:
    import torch

    from fute_kit.atomic import atomic_write_text

    per_hour_alone = 3600 * len(items) / seconds_alone
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        where = f"{torch.cuda.get_device_name(device)}, peak memory {peak:.1f} GiB"
    else:
        where = f"CPU ({platform.processor() or 'cpu'}), {torch.get_num_threads()} threads"
    precision = getattr(args, "precision_used", "fp32")
    command = " ".join([".venv/bin/python", *sys.argv])
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [
        "# Stacked taskemb training (bench/stacked_training.py)",
        "",
        f"Command: `{command}` ({when} UTC, load average {os.getloadavg()[0]:.1f} at the end); precision {precision}.",
        "",
        f"Device: {where}; torch {torch.__version__}. Surrogate {args.surrogate}; {len(items)} builtin datasets "
        f"({', '.join(i.name or '?' for i in items)}), {args.examples} examples each (fewer where smaller); "
        f"epochs {args.epochs}, batch {args.batch_size}, contrast {args.contrast} (with a contrast each subject is "
        "2 trainings, so a stack holds 2K members).",
        "",
        f"One at a time: {seconds_alone:.1f} s for {len(items)} embeddings = **{per_hour_alone:.0f} embeddings/hour**. "
        f"Seed-level yardstick (subject 1, seed 0 vs 1): distance {yardstick:.2e}.",
        "",
        "| K subjects | members per stack | seconds | embeddings/hour | x one at a time | max distance to twin |",
        "|---:|---:|---:|---:|---:|---:|",
        *(f"| {k} | {m} | {s:.1f} | {h:.0f} | {x:.2f} | {d:.2e} |" for k, m, s, h, x, d in rows),
        "",
        "Distance: 1 - cosine of the row-normalised embeddings (taskemb's default metric). Goal on a GPU: >= 5x "
        "the embeddings per hour of one at a time, every distance within the seed-level yardstick.",
        "",
    ]
    atomic_write_text(Path(args.out), "\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
