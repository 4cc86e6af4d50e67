"""Benchmark of the taskemb Fisher pass and of one whole DTE (a script, not a test).

Reports, in one run, with all-MiniLM-L6-v2 on the builtin data:
- Fisher-pass time / no-gradient forward time on the same length-sorted batches (goal <= 2.2, floor ~1.9);
- padding efficiency (real tokens / processed tokens) of length-sorted batches vs random order (goal >= 0.85);
- agreement of the batched Fisher with a per-example loop computing the same numbers (goal < 1e-4), and the
  loop's time;
- the embedding's size against a full-parameter Fisher (goal >= 1000x smaller);
- wall time and peak memory of one DTE on 1,000 builtin examples (rt-sentiment, all splits).

Uses CUDA when available. Writes the table to bench/RESULTS-taskemb.md.

    .venv/bin/python bench/taskemb_fisher.py [--examples 1000] [--loop-examples 64] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(repeats: int, fn: Any, device: Any) -> float:
    """The fastest of a few runs: the machine is shared, the minimum is the least disturbed."""
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1000, help="examples of the whole-DTE run")
    parser.add_argument("--timing-examples", type=int, default=256, help="examples of the Fisher/forward timing")
    parser.add_argument("--loop-examples", type=int, default=64, help="examples of the per-example loop check")
    parser.add_argument("--batch-size", type=int, default=32, help="batch of the Fisher/forward timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(HERE / "RESULTS-taskemb.md"))
    args = parser.parse_args()

    import torch
    import transformers

    from fute_kit.atomic import atomic_write_text
    from fute_kit.components import RunContext
    from fute_kit_hf.datasets import BuiltinDataset
    from fute_kit_hf.surrogate import load_surrogate, make_head
    from fute_kit_hf.targets import make_targets
    from fute_kit_hf.training import FineTuned
    from fute_kit_taskemb.fisher import fisher_pass, per_example_fisher
    from fute_kit_taskemb.method import TaskEmb

    transformers.utils.logging.set_verbosity_error()
    context = RunContext(show_progress=False)
    surrogate = load_surrogate("minilm", args.device)
    device = surrogate.device
    data = BuiltinDataset(dataset="rt-sentiment", split=None).load(context)
    rows: list[tuple[str, str, str]] = []

    # -- Fisher pass vs no-gradient forward, on the same batches ---------------------------------
    timing = data.sample(args.timing_examples, seed=1)
    tokenized = surrogate.tokenize(timing, 128)
    targets = make_targets(timing, "ce", device)
    model = surrogate.trainable_copy()  # timing does not depend on training: a copy with a seeded head
    head = make_head(surrogate.hidden_size, targets.num_outputs, seed=0, device=device)
    model.eval()
    pair = FineTuned(model, head)

    def forward_only() -> None:
        with torch.inference_mode():
            for batch in surrogate.batches(tokenized, args.batch_size, order="length"):
                head(surrogate.forward_features(model, batch, output_hidden_states=True).pooled)

    def fisher() -> None:
        fisher_pass(surrogate, pair, tokenized, targets, batch_size=args.batch_size)

    forward_only()  # warm-up (allocator, kernels)
    t_forward = best_of(args.repeats, forward_only, device)
    t_fisher = best_of(args.repeats, fisher, device)
    ratio = t_fisher / t_forward
    rows.append(
        (
            f"Fisher pass / no-grad forward ({args.timing_examples} examples, batch {args.batch_size}, length-sorted)",
            f"{t_fisher:.2f} s / {t_forward:.2f} s = **{ratio:.2f}**",
            "<= 2.2 (floor ~1.9)",
        )
    )

    # -- padding efficiency --------------------------------------------------------------------
    full_tok = surrogate.tokenize(data, 128)

    def efficiency(order: str) -> float:
        real = processed = 0
        for batch in surrogate.batches(full_tok, 32, order=order, seed=0):  # type: ignore[arg-type]
            real += batch.real_tokens
            processed += batch.processed_tokens
        return real / processed

    eff_sorted, eff_random = efficiency("length"), efficiency("shuffle")
    rows.append(
        (
            f"padding efficiency, batch 32 ({len(data)} examples): length-sorted vs random order",
            f"**{eff_sorted:.3f}** vs {eff_random:.3f}",
            ">= 0.85",
        )
    )

    # -- agreement with a per-example loop -----------------------------------------------------
    loop_data = data.sample(args.loop_examples, seed=2)
    loop_tok = surrogate.tokenize(loop_data, 128)
    loop_targets = make_targets(loop_data, "ce", device)
    sync(device)
    start = time.perf_counter()
    batched = fisher_pass(surrogate, pair, loop_tok, loop_targets, batch_size=32).array
    sync(device)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = per_example_fisher(surrogate, pair, loop_tok, loop_targets)
    sync(device)
    t_loop = time.perf_counter() - start
    scale = np.abs(looped).max(axis=1, keepdims=True)
    max_rel = float((np.abs(batched - looped) / scale).max())
    rows.append(
        (
            f"batched vs per-example loop ({args.loop_examples} examples): max relative difference per component",
            f"**{max_rel:.1e}**",
            "< 1e-4",
        )
    )
    rows.append(
        (
            "time: per-example loop vs batched Fisher pass",
            f"{t_loop:.2f} s vs {t_batched:.2f} s ({t_loop / t_batched:.1f}x)",
            "",
        )
    )

    # -- size --------------------------------------------------------------------------------------
    n_params = sum(p.numel() for p in surrogate.backbone.parameters())
    n_embedding = (surrogate.num_layers + 1) * surrogate.hidden_size
    rows.append(
        (
            "embedding size vs full-parameter Fisher",
            f"{surrogate.num_layers + 1} x {surrogate.hidden_size} = {n_embedding:,} vs {n_params:,} "
            f"(**{n_params / n_embedding:,.0f}x** smaller)",
            ">= 1000x",
        )
    )

    # -- one whole DTE -----------------------------------------------------------------------------
    dte_data = data.sample(args.examples, seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = rss_mb()
    start = time.perf_counter()
    result = TaskEmb(device=args.device).embed(dte_data, "minilm", context)
    t_dte = time.perf_counter() - start
    d = result.details
    rows.append(
        (
            f"one DTE, {len(dte_data)} examples (rt-sentiment), default options",
            f"**{t_dte:.0f} s** wall (training {d['train_seconds']:.0f} s, {d['steps']} steps; Fisher "
            f"{d['fisher_seconds']:.1f} s)",
            "",
        )
    )
    memory = f"peak RSS {peak_rss_mb():.0f} MB (process; {rss_before:.0f} MB before the DTE, {rss_mb():.0f} MB after)"
    if device.type == "cuda":
        memory += f"; peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MB"
    rows.append(("memory of that DTE", memory, ""))
    rows.append(
        (
            "that DTE learned",
            f"loss {d['train_loss_first']:.3f} -> {d['train_loss_last']:.3f}; agreement {d['agreement']:.3f} "
            f"vs majority {d['majority_rate']:.3f}; warnings: {result.warnings or 'none'}",
            "",
        )
    )

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    header = [
        "# taskemb benchmark",
        "",
        "Command: `.venv/bin/python bench/taskemb_fisher.py " + " ".join(sys.argv[1:]) + "`",
        "",
        f"Device: {device} ({device_name}); torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs visible; surrogate all-MiniLM-L6-v2; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Times are the best of {args.repeats} runs where "
        "repeated; the machine may be shared, so absolute times vary, the ratios less.",
        "",
        "| measure | result | goal |",
        "|---|---|---|",
    ]
    table = "\n".join(header + [f"| {a} | {b} | {c} |" for a, b, c in rows]) + "\n"
    print(table)
    atomic_write_text(args.out, table)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
