"""Sharing the null task between subjects whose null task is the same (texts, prior): speed and sensitivity.

With the default contrast every taskemb (and tupate) embedding trains the surrogate twice: on the task and on
its null task (the same texts labelled with the labels' prior). Subjects on the same texts with the same prior
(the MTEs of a study on U; a shuffled-labels control and its dataset) share that second training through the
null-task cache (``fute_kit_hf.null_task``). Two parts, each in one process:

    # how much the null Fisher moves with the prior, against seed noise (no timing: any machine load is fine)
    .venv/bin/python bench/null_task_sharing.py sensitivity --out /work/runs/null-task/sensitivity.json
    # a study-like workload (4 label sets on the same texts) without and with sharing, timed in one run
    /work/helpers/quiet-run .venv/bin/python bench/null_task_sharing.py speed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "RESULTS-null-task.md"
SURROGATE = "all-MiniLM-L6-v2"
# (name, class-0 share of the null prior, seed) of the null Fishers the sensitivity part compares.
# Seed noise first: on a loaded machine the most telling comparisons finish first.
NULLS = [
    ("p0.50 s0", 0.50, 0),
    ("p0.50 s1", 0.50, 1),
    ("p0.45 s0", 0.45, 0),
    ("p0.40 s0", 0.40, 0),
    ("p0.30 s0", 0.30, 0),
]


def unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)


def row_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over components of the cosine of two Fishers' rows (the contrast compares rows after normalising)."""
    return float(np.mean(np.sum(unit_rows(a) * unit_rows(b), axis=1)))


def flat_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def u_texts(n: int) -> Any:
    from fute_kit.plugin import RunContext
    from fute_kit_hf.datasets import BuiltinDataset

    return BuiltinDataset(dataset="unlabeled", limit=n).load(RunContext(show_progress=False))


def fisher_of(method: Any, model: Any, tokenized: Any, targets: Any, seed: int) -> np.ndarray:
    """The taskemb Fisher (step 1 and 2) of these targets with ``method``'s options at ``seed``."""
    import attrs

    seeded = attrs.evolve(method, seed=seed)
    settings = seeded.training_settings(seed, head_fit_batch_size=seeded.batch_size * 2, label="taskemb")
    _, fisher = seeded._fisher(model, tokenized, targets, settings, None)
    return fisher.array


def prior_task(p0: float, n: int, device: Any) -> Any:
    import torch

    from fute_kit_hf.targets import Targets

    prior = torch.tensor([p0, 1.0 - p0], dtype=torch.float32, device=device)
    return Targets(prior.expand(n, -1).clone(), "soft-ce", 2)


def length_task(examples: Any, device: Any) -> Any:
    """An MTE-like task on U with a prior of exactly (0.5, 0.5): a "model" that calls the longer half of the texts 1."""
    import torch

    from fute_kit_hf.targets import Targets

    lengths = np.array([len(text) for text in examples.texts])
    labels = np.zeros(len(lengths), dtype=np.int64)
    labels[np.argsort(lengths, kind="stable")[len(lengths) // 2 :]] = 1
    return Targets(torch.as_tensor(labels, device=device), "ce", 2)


def sensitivity(args: argparse.Namespace) -> None:
    """Null Fishers at several priors and two seeds on U, and the contrast embedding of a balanced task with each."""
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_taskemb.method import TaskEmb

    args.out.parent.mkdir(parents=True, exist_ok=True)
    store = args.out.with_suffix(".npz")
    saved = dict(np.load(store)) if store.exists() else {}
    method = TaskEmb(device="cpu", max_length=args.max_length)
    model = load_surrogate(SURROGATE, "cpu")
    examples = u_texts(args.texts)
    tokenized = model.tokenize(examples, method.max_length)
    task = length_task(examples, model.device)
    runs = [
        *[(name, p0, seed, None) for name, p0, seed in NULLS],
        ("task s0", None, 0, task),
        ("task s1", None, 1, task),
    ]
    for name, p0, seed, labels in runs[: args.runs]:
        if name in saved:
            continue
        started = time.perf_counter()
        targets = labels if labels is not None else prior_task(p0, len(examples), model.device)
        saved[name] = fisher_of(method, model, tokenized, targets, seed)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
        np.savez(store, **saved)
    report = _sensitivity_report(saved, args)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


def _sensitivity_report(saved: dict[str, np.ndarray], args: Any) -> dict[str, Any]:
    """Cosines of whatever has been computed so far (a partial run reports the comparisons it can).

    The task's prior is exactly (0.5, 0.5): its embedding with the null task at another prior is what a rounded
    prior would give (a 0.05 shift is twice the largest rounding error of a 0.05 grid).
    """
    report: dict[str, Any] = {
        "texts": args.texts,
        "max_length": args.max_length,
        "surrogate": SURROGATE,
        "task": "U's longer half of the texts vs the shorter half (prior 0.5/0.5), hard labels",
        "computed": sorted(saved),
    }
    base = saved.get("p0.50 s0")
    if base is not None:
        report["null_row_cosine_to_p0.50_s0"] = {
            name: round(row_cosine(base, saved[name]), 6) for name, _, _ in NULLS[1:] if name in saved
        }
    if "task s0" in saved and base is not None:
        exact = unit_rows(saved["task s0"]) - unit_rows(base)
        report["embedding_cosine_to_exact_s0"] = {
            f"null {name}": round(flat_cosine(unit_rows(saved["task s0"]) - unit_rows(saved[name]), exact), 6)
            for name, _, seed in NULLS[1:]
            if name in saved and seed == 0
        }
        if "task s1" in saved and "p0.50 s1" in saved:
            seed1 = unit_rows(saved["task s1"]) - unit_rows(saved["p0.50 s1"])
            report["embedding_cosine_to_exact_s0"]["seed 1 (task and null)"] = round(flat_cosine(seed1, exact), 6)
    report["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
    return report


def balanced_texts(n: int) -> Any:
    """``n`` rt-sentiment training snippets, half of each label (so every subject below has the prior 0.5/0.5)."""
    from fute_kit.plugin import RunContext
    from fute_kit_hf.datasets import BuiltinDataset

    full = BuiltinDataset(dataset="rt-sentiment").load(RunContext(show_progress=False))
    labels = np.asarray(full.labels)
    rng = np.random.default_rng(0)
    picked = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), n // 2, replace=False) for c in (0, 1)]))
    return full.select(picked)


def subjects(examples: Any) -> dict[str, Any]:
    """Four label sets on the same texts with the same prior: one null task for all of them."""
    from fute_kit.plugin import Examples

    def relabel(labels: np.ndarray, name: str) -> Examples:
        return Examples(examples.texts, labels, "hard", examples.label_names, name=name)

    labels = np.asarray(examples.labels)
    lengths = np.array([len(text) for text in examples.texts])
    longer = np.zeros(len(labels), dtype=np.int64)
    longer[np.argsort(lengths, kind="stable")[len(labels) // 2 :]] = 1
    return {
        "dataset labels": examples,
        "shuffled (seed 1)": relabel(np.random.default_rng(1).permutation(labels), "shuffled-1"),
        "shuffled (seed 2)": relabel(np.random.default_rng(2).permutation(labels), "shuffled-2"),
        "longer half": relabel(longer, "longer-half"),
    }


def speed(args: argparse.Namespace) -> None:
    """Each subject embedded without sharing (its own empty cache) and with it (one cache), interleaved."""
    import tempfile

    import torch

    from fute_kit.plugin import RunContext
    from fute_kit_hf.surrogate import load_surrogate
    from fute_kit_taskemb.method import TaskEmb

    method = TaskEmb(device="cpu", max_length=args.max_length)
    load_surrogate(SURROGATE, "cpu")  # loaded once, outside the timings
    tasks = subjects(balanced_texts(args.texts))
    root = Path(tempfile.mkdtemp(prefix="fute-null-bench-"))
    shared = RunContext(cache_dir=root / "shared", show_progress=False)
    rows = []
    for i, (name, examples) in enumerate(tasks.items()):
        alone = RunContext(cache_dir=root / f"alone-{i}", show_progress=False)
        timed = {}
        for mode, context in (("alone", alone), ("shared", shared)):
            started = time.perf_counter()
            timed[mode] = method.embed(examples, SURROGATE, context)
            timed[mode + " s"] = time.perf_counter() - started
        a, b = timed["alone"].array, timed["shared"].array
        rows.append(
            {
                "subject": name,
                "alone_s": timed["alone s"],
                "shared_s": timed["shared s"],
                "reused": timed["shared"].details["null_task_reused"],
                "cosine": flat_cosine(a.astype(np.float64), b.astype(np.float64)),
                "identical": bool(np.array_equal(a, b)),
            }
        )
        print(rows[-1], flush=True)
    header = (
        f"Device: cpu; torch {torch.__version__} with {torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"visible; surrogate {SURROGATE}; taskemb defaults (contrast prior) with max_length {args.max_length}; "
        f"{args.texts} rt-sentiment texts, balanced; {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"load average (1 min) at the end of the run {os.getloadavg()[0]:.1f}."
    )
    if args.rows:
        args.rows.write_text(
            json.dumps({"header": header, "rows": rows, "texts": args.texts, "max_length": args.max_length})
        )
    text = _speed_table(header, rows, args)
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)


def table(args: argparse.Namespace) -> None:
    """Rewrite the results table from a speed run's rows and the latest sensitivity JSON (no new measurement)."""
    saved = json.loads(args.rows.read_text())
    args.texts, args.max_length = saved["texts"], saved["max_length"]
    text = _speed_table(saved["header"], saved["rows"], args)
    print(text)
    RESULTS.write_text(text)


def _speed_table(header: str, rows: list[dict[str, Any]], args: Any) -> str:
    alone, shared = sum(r["alone_s"] for r in rows), sum(r["shared_s"] for r in rows)
    lines = [
        f"Command: `/work/helpers/quiet-run .venv/bin/python bench/null_task_sharing.py speed --texts {args.texts} "
        f"--max-length {args.max_length}`",
        "",
        header,
        "",
        "| subject | without sharing (s) | with sharing (s) | speed-up | null task reused | cosine | bit-identical |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['subject']} | {r['alone_s']:.1f} | {r['shared_s']:.1f} | {r['alone_s'] / r['shared_s']:.2f}x | "
            f"{'yes' if r['reused'] else 'no'} | {r['cosine']:.6f} | {'yes' if r['identical'] else 'no'} |"
        )
    lines.append(f"| **all {len(rows)}** | {alone:.1f} | {shared:.1f} | **{alone / shared:.2f}x** | | | |")
    if args.sensitivity and args.sensitivity.exists():
        lines += ["", "The sensitivity run's figures, as it wrote them:", "", "```json"]
        lines += [args.sensitivity.read_text().strip(), "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = parser.add_subparsers(dest="part", required=True)
    sens = parts.add_parser("sensitivity", help="null Fisher vs prior and seed (cosines; no timing)")
    sens.add_argument("--texts", type=int, default=200)
    sens.add_argument("--max-length", type=int, default=128, help="tokens per text (taskemb's option)")
    sens.add_argument("--runs", type=int, default=10, help="compute only the first N trainings (in their order)")
    sens.add_argument("--out", type=Path, default=Path("/work/runs/null-task/sensitivity.json"))
    fast = parts.add_parser("speed", help="4 subjects with one null task, without and with sharing (timed)")
    fast.add_argument("--texts", type=int, default=48)
    fast.add_argument("--max-length", type=int, default=64, help="tokens per text (taskemb's option)")
    fast.add_argument("--sensitivity", type=Path, help="a sensitivity JSON to append to the table")
    fast.add_argument("--no-write", action="store_true", help=f"print only; do not write {RESULTS.name}")
    fast.add_argument("--rows", type=Path, help="also keep the measured rows in this JSON file (for 'table')")
    again = parts.add_parser("table", help=f"rewrite {RESULTS.name} from kept rows and a sensitivity JSON")
    again.add_argument("--rows", type=Path, required=True)
    again.add_argument("--sensitivity", type=Path)
    args = parser.parse_args()
    {"sensitivity": sensitivity, "speed": speed, "table": table}[args.part](args)


if __name__ == "__main__":
    main()
