"""Per-embedding speed options of taskemb on the CPU, side by side (a script, not a test).

One process, one dataset, one surrogate, the same seed: each variant computes the whole taskemb embedding
(default options, contrast 'prior': the task's training and Fisher pass, then the null task's) and reports
its wall and CPU seconds against today's float32 path, the training steps it ran (task / null), and the
cosine (per-component normalised, taskemb's default metric) of its embedding to the float32 embedding of
the same seed, next to the float32 seed-0 vs seed-1 cosine (seed noise: the yardstick).

Variants (``--variants``, comma-separated, run in this order):

- ``fp32``: today (precision 'fp32': float32, the per-parameter AdamW loop); ``fp32-seed1``: the yardstick
  (also a second timing of the same work);
- ``bf16``: bfloat16 autocast around the forward passes, float32 master weights and AdamW loop;
- ``fused``: float32 with the fused AdamW kernel; ``auto``: bf16 + fused (precision 'auto' on this CPU);
- ``threads1``: fp32 with 1 intra-op thread (default: torch.get_num_threads());
- ``stop``: fp32, training stops once the mean excess loss of the last 5 steps is below --stop-loss;
- ``auto-stop``: auto + stop; ``auto-stop-fisher``: auto + stop + the Fisher pass under bf16 autocast;
- ``compile``: fp32 with the trained copy under torch.compile(dynamic=True) (compile time included);
- ``grouped``: fp32 with batch_order 'grouped' (shuffled batches of similar lengths: less padding);
  ``auto-grouped``: auto + grouped; ``auto-grouped-seed1``: the same at seed 1 (its seed noise);
  ``auto-grouped-stop``: auto + grouped + stop.

An untimed warm-up embedding (``--warmup-examples``, fp32 and bf16) comes first. Each variant has its own empty cache
folder, so no null task is shared between them (sharing is measured by bench/null_task_sharing.py). The table is
rewritten after every variant; variants that would start after ``--budget-min`` minutes are left out (named).
Writes bench/RESULTS-embedding-speed.md.

    .venv/bin/python bench/embedding_speed.py [--examples 200] [--variants fp32,auto,...] [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "auto": {"precision": "auto"},
    "fp32-seed1": {"seed": 1},
    "auto-stop-fisher": {"precision": "auto", "stop": True, "fisher": "auto"},
    "bf16": {"precision": "bf16", "extra": {"fused_optimizer": False}},
    "fused": {"extra": {"fused_optimizer": True}},
    "stop": {"stop": True},
    "threads1": {"threads": 1},
    "auto-stop": {"precision": "auto", "stop": True},
    "compile": {"compile": True},
    "grouped": {"batch_order": "grouped"},
    "auto-grouped": {"precision": "auto", "batch_order": "grouped"},
    "auto-grouped-seed1": {"precision": "auto", "batch_order": "grouped", "seed": 1},
    "auto-grouped-stop": {"precision": "auto", "batch_order": "grouped", "stop": True},
}


def unit_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two (components x hidden) embeddings after normalising each row (taskemb's default metric)."""

    def unit(x: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norms, out=np.zeros_like(x, dtype=np.float64), where=norms > 0).ravel()

    ua, ub = unit(a.astype(np.float64)), unit(b.astype(np.float64))
    return float(ua @ ub / max(1e-300, np.linalg.norm(ua) * np.linalg.norm(ub)))


def make_method(spec: dict[str, Any], args: argparse.Namespace) -> Any:
    """taskemb with the variant's options; Settings fields the options do not expose are added here."""
    from fute_kit_taskemb.method import TaskEmb

    extra = dict(spec.get("extra", {}))
    if spec.get("stop"):
        extra["stop_loss"] = args.stop_loss

    class Variant(TaskEmb):
        def training_settings(self, seed: int, **given: Any) -> Any:
            return super().training_settings(seed, **{**given, **extra})

    return Variant(
        seed=spec.get("seed", 0),
        precision=spec.get("precision", "fp32"),
        batch_order=spec.get("batch_order", "shuffle"),
        max_length=args.max_length,
        device="cpu",
    )


@contextlib.contextmanager
def variant_patches(spec: dict[str, Any], trainings: list[dict[str, Any]]) -> Iterator[None]:
    """Threads, the Fisher pass's precision, torch.compile and a record of every training's details."""
    import torch

    import fute_kit_hf.training as training
    import fute_kit_taskemb.fisher as fisher
    from fute_kit_hf.surrogate import Surrogate

    saved = (torch.get_num_threads(), training.train, fisher.fisher_pass, Surrogate.trainable_copy)
    original_train, original_copy = saved[1], saved[3]

    def recorded_train(*a: Any, **k: Any) -> dict[str, Any]:
        details = original_train(*a, **k)
        trainings.append(details)
        return details

    def compiled_copy(self: Any) -> Any:
        model = original_copy(self)
        model.compile(dynamic=True)
        return model

    try:
        torch.set_num_threads(spec.get("threads", saved[0]))
        training.train = recorded_train  # taskemb imports it at call time
        if spec.get("fisher"):
            fisher.fisher_pass = functools.partial(saved[2], precision=spec["fisher"])
        if spec.get("compile"):
            torch._dynamo.reset()
            Surrogate.trainable_copy = compiled_copy
        yield
    finally:
        torch.set_num_threads(saved[0])
        training.train, fisher.fisher_pass, Surrogate.trainable_copy = saved[1], saved[2], saved[3]


def run_variant(name: str, examples: Any, args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    from fute_kit.components import RunContext

    spec = VARIANTS[name]
    trainings: list[dict[str, Any]] = []
    method = make_method(spec, args)
    context = RunContext(cache_dir=tempfile.mkdtemp(prefix="embedding-speed-"), show_progress=False)
    with variant_patches(spec, trainings):
        wall, cpu = time.perf_counter(), time.process_time()
        result = method.embed(examples, args.surrogate, context)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    details = result.details
    row = {
        "name": name,
        "array": result.array,
        "wall": wall,
        "cpu": cpu,
        "steps": [t["steps"] for t in trainings],
        "train_seconds": sum(t["train_seconds"] for t in trainings),
        "fisher_seconds": details["fisher_seconds"],
        "precision": details.get("precision"),
        "optimizer": details.get("optimizer"),
        "loss": (details["probe_loss_before"], details["probe_loss_after"]),
        "agreement": details.get("agreement"),
        "majority": details.get("majority_rate"),
        "warnings": len(result.warnings),
    }
    print(
        f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, steps {row['steps']}, precision {row['precision']}",
        flush=True,
    )
    return row


def table(rows: list[dict[str, Any]]) -> list[str]:
    base = [r for r in rows if r["name"] in ("fp32", "fp32-seed1")]
    base_wall = float(np.mean([r["wall"] for r in base]))
    base_cpu = float(np.mean([r["cpu"] for r in base]))
    reference = next(r["array"] for r in rows if r["name"] == "fp32")
    lines = [
        "| variant | wall s | speed-up (wall) | CPU s | speed-up (CPU) | steps task / null | training s | Fisher s "
        "(task) | cosine to fp32 seed 0 | probe loss before -> after; agreement (majority) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        steps = " / ".join(str(s) for s in r["steps"])
        cosine = "1 (itself)" if r["name"] == "fp32" else f"{unit_cosine(reference, r['array']):.4f}"
        if r["name"] == "fp32-seed1":
            cosine += " (seed noise)"
        learned = f"{r['loss'][0]:.3f} -> {r['loss'][1]:.3f}; {r['agreement']} ({r['majority']})"
        lines.append(
            f"| {r['name']} | {r['wall']:.1f} | {base_wall / r['wall']:.2f}x | {r['cpu']:.1f} | "
            f"{base_cpu / r['cpu']:.2f}x | {steps} | {r['train_seconds']:.1f} | {r['fisher_seconds']:.1f} | "
            f"{cosine} | {learned} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", default="minilm")
    parser.add_argument("--dataset", default="rt-sentiment")
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--stop-loss", type=float, default=0.01, help="the 'stop' variants' stop_loss")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--warmup-examples", type=int, default=16, help="examples of the untimed warm-up")
    parser.add_argument("--budget-min", type=float, default=11.0, help="start no variant after this many minutes")
    parser.add_argument("--out", default=str(HERE / "RESULTS-embedding-speed.md"))
    args = parser.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or "fp32" not in names:
        sys.exit(f"variants must include 'fp32' and come from {', '.join(VARIANTS)}; got {', '.join(unknown)}")

    import torch

    from fute_kit.components import RunContext
    from fute_kit_hf.datasets import BuiltinDataset
    from fute_kit_hf.precision import native_bf16

    context = RunContext(show_progress=False)
    examples = BuiltinDataset(dataset=args.dataset, limit=args.examples).load(context)
    warm = BuiltinDataset(dataset=args.dataset, limit=args.warmup_examples, seed=1).load(context)
    for name in ("fp32", "bf16"):  # untimed: loads the model, primes the kernels of both paths
        if name == "bf16" and not native_bf16(torch.device("cpu")):
            continue
        run_variant(name, warm, args)
    load_before = os.getloadavg()
    started = time.time()
    rows: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        if time.time() - started > args.budget_min * 60:
            skipped = names[k:]
            print(f"budget of {args.budget_min} min spent: not run: {', '.join(skipped)}", flush=True)
            write(
                args,
                rows,
                [*table(rows), "", f"Not run (the run's time budget was spent): {', '.join(skipped)}."],
                load_before,
                os.getloadavg(),
                time.time() - started,
            )
            break
        rows.append(run_variant(name, examples, args))
        write(args, rows, table(rows), load_before, os.getloadavg(), time.time() - started)
    print("\n".join(table(rows)))


def write(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    lines: list[str],
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    seconds: float,
) -> None:
    import torch

    from fute_kit.atomic import atomic_write_text

    command = " ".join(["bench/embedding_speed.py", *sys.argv[1:]])
    text = [
        "# taskemb: per-embedding speed options on the CPU",
        "",
        f"Command: `.venv/bin/python {command}`",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} intra-op threads by default; "
        f"surrogate {args.surrogate}; {args.examples} examples of builtin {args.dataset} (train split), max_length "
        f"{args.max_length}; taskemb default options (contrast 'prior', 3 epochs, batch 16); seed 0 unless named. "
        f"Load average (1, 5, 15 min) {', '.join(f'{x:.1f}' for x in load_before)} before the timed runs and "
        f"{', '.join(f'{x:.1f}' for x in load_after)} after; the timed runs took {seconds / 60:.1f} min.",
        "",
        *lines,
        "",
        "Speed-ups are against the mean of the two float32 runs (`fp32`, `fp32-seed1`: the same work, two seeds); "
        "CPU seconds are the process's own (all threads), steadier than wall seconds on a shared machine. The "
        "cosine is taskemb's default metric (rows normalised, then cosine); `fp32-seed1`'s is the seed noise, the "
        "yardstick for every other row. Steps: the task's training, then the null task's (contrast 'prior').",
        "",
        "Not shown: other datasets, sizes and surrogates (one dataset, one size); GPUs; the effect on retrieval "
        "(section 1's table) beyond the cosine; the load average above says how quiet the cores were.",
        "",
    ]
    atomic_write_text(Path(args.out), "\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
