"""One tupate training step against one full fine-tuning step of the same surrogate and batch.

Prompt tuning (and prefix, LoRA, BitFit) needs no weight gradients, so a step should cost well under a full
fine-tuning step (goal: prompt / full < 0.7). Each mode runs in its own process, so that its peak memory
(resident set growth over the loaded surrogate on the CPU, peak allocated memory on CUDA) is its own;
modes are interleaved over repeats so that load on a shared machine hits them alike.

    .venv/bin/python bench/tupate_step.py             # table on stdout, bench/RESULTS-tupate.md (its notes kept)
    .venv/bin/python bench/tupate_step.py --steps 3 --repeats 1 --no-write
    .venv/bin/python bench/tupate_step.py --modes prompt,prompt@8,full --threads 1   # a subset of modes

A mode is ``variant[+flag...][@length]`` (see ``MODES``): ``prompt+eager@8`` is prompt tuning of 8 positions with
transformers' eager attention instead of SDPA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# A mode is ``variant[+flag...][@length]``: "prompt+dropout" runs the frozen surrogate with dropout on, as the
# reference code does; "+eager" uses transformers' eager attention instead of the default (SDPA, the fused kernel);
# "+bf16" runs the forward under bfloat16 autocast with the fused AdamW (fute_kit_hf.precision, option
# precision = "bf16"); "@8" tunes 8 prompt/prefix positions instead of 16.
MODES = ("prompt", "prompt@8", "prompt+dropout", "prompt+eager", "prefix", "lora", "bitfit", "full")
VARIANTS = ("prompt", "prefix", "lora", "bitfit", "full")
FLAGS = ("dropout", "eager", "bf16")
DEFAULT_LENGTH = 16
RESULTS = Path(__file__).resolve().parent / "RESULTS-tupate.md"
# Written analysis below this line of RESULTS (what each option changes, checks beside the timing) survives a rerun.
NOTES_MARKER = "<!-- notes: kept when bench/tupate_step.py rewrites this file -->"


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def parse_mode(mode: str) -> tuple[str, set[str], int]:
    """``"prompt+dropout@8"`` → ("prompt", {"dropout"}, 8); exits with a message on a mode it does not know."""
    name, _, length = mode.partition("@")
    variant, *flags = name.split("+")
    if variant not in VARIANTS or not set(flags) <= set(FLAGS) or (length and not length.isdigit()):
        raise SystemExit(
            f"tupate_step: unknown mode {mode!r}: use variant[+flag...][@length] with variant one of "
            f"{', '.join(VARIANTS)}, flags {', '.join(FLAGS)}, length a positive integer (e.g. prompt+eager@8)"
        )
    return variant, set(flags), int(length) if length else DEFAULT_LENGTH


def run_mode(args: argparse.Namespace) -> dict[str, Any]:
    """Child process: time ``args.steps`` optimisation steps of one mode on one batch."""
    import torch

    from fute_kit.components import RunContext
    from fute_kit_hf.datasets import BuiltinDataset
    from fute_kit_hf.precision import autocast, fused_adamw, resolve_precision
    from fute_kit_hf.surrogate import load_surrogate, make_head
    from fute_kit_tupate.tuners import setup_variant

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    context = RunContext(show_progress=False)
    examples = BuiltinDataset(dataset=args.dataset, limit=args.batch_size).load(context)
    surrogate = load_surrogate(args.surrogate, args.device)
    batch = next(surrogate.batches(examples, args.batch_size, args.max_length, order="given"))
    labels = torch.as_tensor(examples.labels, device=surrogate.device)
    cuda = surrogate.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    else:
        base = _rss_mb()
    variant, flags, length = parse_mode(args.mode)
    if variant == "full":
        model = surrogate.trainable_copy()
        params = list(model.parameters())
        prompt = None
        embedding_size = sum(p.numel() for p in params)  # what a fine-tuned "embedding" would weigh

        def pooled() -> Any:
            return surrogate.forward_features(model, batch, output_hidden_states=False).pooled
    else:
        tuned = setup_variant(surrogate, variant, length=length, init="vocab", rank=4, alpha=8.0, seed=0)
        model = tuned.model
        model.train("dropout" in flags)  # as tupate trains: the frozen surrogate without dropout by default
        params = list(tuned.params.values())
        embedding_size = int(tuned.embedding("matrix").size)
        prompt = tuned

        def pooled() -> Any:
            return prompt.pooled(surrogate, batch)

    if "eager" in flags:
        model.set_attn_implementation("eager")
    head = make_head(surrogate.hidden_size, examples.num_classes, 0, surrogate.device)
    choice = "bf16" if "bf16" in flags else "fp32"
    precision = resolve_precision(choice, surrogate.device)
    optimizer = torch.optim.AdamW(
        [*params, *head.parameters()], lr=1e-3, fused=fused_adamw(choice, surrogate.device) or None
    )
    times, cpu_times = [], []
    for _ in range(args.steps + 1):  # the first step allocates optimizer state: not timed
        if cuda:
            torch.cuda.synchronize()
        started, cpu_started = time.perf_counter(), time.process_time()
        with autocast(precision, surrogate.device):
            logits = head(pooled())
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20 - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return {
        "mode": args.mode,
        "seconds": statistics.median(times[1:]),
        "cpu_seconds": statistics.median(cpu_times[1:]),
        "peak_mb": round(peak, 1),
        "tuned": sum(p.numel() for p in params),
        "embedding": embedding_size,
        "tokens": list(batch.inputs["input_ids"].shape),
        "attention": model.config._attn_implementation,
        "device": str(surrogate.device),
    }


def kept_notes() -> str:
    """The notes part of the current RESULTS file (from ``NOTES_MARKER`` on), or nothing."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    at = text.find(NOTES_MARKER)
    return "\n" + text[at:] if at >= 0 else ""


def first_device_is_cuda(runs: dict[str, list[dict[str, Any]]]) -> bool:
    return next(iter(runs.values()))[0]["device"].startswith("cuda")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--surrogate", default="minilm")
    parser.add_argument("--dataset", default="bbc-topic", help="builtin dataset the batch is taken from")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (after one untimed)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per mode, interleaved")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = torch's default); 1 gives steadier CPU times"
    )
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return

    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        parse_mode(mode)  # an unknown mode fails before any child runs
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode in modes:
            child = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
            out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
    # On a shared CPU, wall time swings with other processes' load; the CPU time the step itself consumes
    # (all its threads) swings much less, so the ratio is taken on CPU time (wall time is shown too).
    key = "seconds" if first_device_is_cuda(runs) else "cpu_seconds"
    full = statistics.median(r[key] for r in runs["full"]) if "full" in runs else None
    first = next(iter(runs.values()))[0]
    lines = [
        f"surrogate `{args.surrogate}`, batch {args.batch_size} of `{args.dataset}` padded to "
        f"{first['tokens'][1]} tokens, device {first['device']}, {os.cpu_count()} CPUs, "
        f"torch threads {args.threads or 'default'}; "
        f"median of {args.steps} steps x {args.repeats} runs; ratio on {'wall' if key == 'seconds' else 'CPU'} time",
        "",
        "| mode | attention | tuned parameters | step wall (s) | step CPU (s) | step / full step "
        "| peak memory growth (MB) | embedding size |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, rows in runs.items():
        seconds = statistics.median(r["seconds"] for r in rows)
        cpu = statistics.median(r["cpu_seconds"] for r in rows)
        peak = max(r["peak_mb"] for r in rows)
        ratio = f"{statistics.median(r[key] for r in rows) / full:.2f}" if full else "-"
        size = "(model)" if parse_mode(mode)[0] == "full" else f"{rows[0]['embedding']:,}"
        lines.append(
            f"| {mode} | {rows[0]['attention']} | {rows[0]['tuned']:,} | {seconds:.3f} | {cpu:.3f} | {ratio} "
            f"| {peak:.0f} | {size} |"
        )
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        from fute_kit.atomic import atomic_write_text

        command = "python " + " ".join(["bench/tupate_step.py", *sys.argv[1:]])
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        text = (
            "# tupate: one tuning step vs one full fine-tuning step\n\n"
            f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.machine()}, "
            f"load average {load:.1f} at the end)\n\n"
            "Each mode runs in its own process: forward to the pooled features, linear head, cross-entropy, "
            "backward, AdamW step; the first (optimizer-allocating) step is not timed. Peak memory growth is the "
            "peak resident set minus the resident set after loading the surrogate (CPU), so it includes the "
            "private copy of the model every mode trains on. The goal is prompt / full < 0.7: no weight "
            "gradients and no optimizer state for the weights are needed. The full step trains with dropout, "
            "as fine-tuning does; tupate runs the frozen surrogate without it (option `dropout = false`, the "
            "default), and `prompt+dropout` is the same step with it, as the reference code runs it. "
            "`prompt@8` tunes 8 prompt vectors instead of 16 (the option `length`); `prompt+eager` runs "
            "transformers' eager attention instead of the default SDPA (the fused kernel). No mode computes a "
            "gradient for a frozen weight (their `requires_grad` is off: each frozen linear layer's backward is "
            "one GEMM, for its input).\n\n"
            f"{table}\n"
        )
        atomic_write_text(RESULTS, text + kept_notes())


if __name__ == "__main__":
    main()
