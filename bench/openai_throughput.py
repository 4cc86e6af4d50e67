"""Throughput of the ``openai`` model source against the local llama.cpp server (SmolLM2-135M-Instruct).

Labels the same inputs at several concurrency levels, each with a fresh response cache, then reruns the
study from the cache (it must make zero requests). Optionally (--agreement N) compares the soft labels
with the ``hf-prompted`` source (transformers, dequantised weights) on N texts of U for three prompts.

    .venv/bin/python bench/openai_throughput.py --n 64 --concurrency 1 4 8 --agreement 40

Prints markdown tables and writes bench/RESULTS-openai.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

SENTIMENT = (
    "Is the sentiment of this text positive or negative? Answer with one word.\nText: {text}",
    {"positive": ["positive"], "negative": ["negative"]},
)
PROMPTS = {
    "sentiment": SENTIMENT,
    "subjectivity": (
        "Is this text objective or subjective? Answer with one word.\nText: {text}",
        {"objective": ["objective"], "subjective": ["subjective"]},
    ),
    "topic": (
        "What is the topic of this text: business, entertainment, politics, sport or tech? "
        "Answer with one word.\nText: {text}",
        {k: [k] for k in ("business", "entertainment", "politics", "sport", "tech")},
    ),
}


def load_u(n: int) -> Any:
    from fute_kit.components import RunContext

    try:
        from fute_kit_hf.datasets import BuiltinDataset
    except ImportError:
        sys.exit("the benchmark takes U from the builtin datasets: pip install -e plugins/fute-kit-hf")
    return BuiltinDataset(dataset="unlabeled", limit=n).load(RunContext(show_progress=False))


def throughput(server: Any, inputs: Any, levels: list[int]) -> list[dict[str, Any]]:
    from fute_kit.components import RunContext
    from fute_kit_openai.source import OpenAIModel

    rows = []
    prompt, labels = SENTIMENT
    for level in [*levels, None]:  # None: the last study again, from its cache
        if level is not None:
            cache = Path(tempfile.mkdtemp(prefix="fute-bench-")) / "responses.sqlite"
        concurrency = level or levels[-1]
        model = OpenAIModel(
            model=server.model,
            base_url=server.base_url,
            prompt=prompt,
            labels=labels,
            concurrency=concurrency,
            cache_path=str(cache),
        )
        context = RunContext(cache_dir=cache.parent, show_progress=False)
        started = time.perf_counter()
        model.predict(inputs, context)
        seconds = time.perf_counter() - started
        accounting = context.details["accounting"]
        if level is None and accounting["requests"] != 0:
            raise SystemExit(f"the rerun from the cache made {accounting['requests']} requests (expected 0)")
        rows.append(
            {
                "run": f"concurrency {level}" if level else f"rerun from cache (concurrency {concurrency})",
                "inputs": len(inputs),
                "seconds": seconds,
                "per_second": len(inputs) / seconds,
                "requests": accounting["requests"],
                "cache_hits": accounting["cache_hits"],
                "retries": accounting["retries"],
                "tokens": accounting["prompt_tokens"] + accounting["completion_tokens"],
            }
        )
        print(f"  {rows[-1]['run']}: {seconds:.1f}s", file=sys.stderr, flush=True)
    return rows


def agreement(server: Any, inputs: Any) -> list[dict[str, Any]]:
    from fute_kit.components import RunContext, default_cache_dir
    from fute_kit_openai.source import OpenAIModel

    try:
        from fute_kit_hf.prompted import HFPrompted
    except ImportError:
        sys.exit("--agreement needs the hf plugin's hf-prompted source")
    rows = []
    for name, (prompt, labels) in PROMPTS.items():
        hf = HFPrompted(prompt=prompt, labels=labels, path="smollm2", max_length=512)
        reference = np.asarray(
            hf.predict(inputs, RunContext(cache_dir=default_cache_dir(), show_progress=False)).labels
        )
        cache = Path(tempfile.mkdtemp(prefix="fute-bench-")) / "responses.sqlite"
        context = RunContext(cache_dir=cache.parent, show_progress=False)
        model = OpenAIModel(
            model=server.model, base_url=server.base_url, prompt=prompt, labels=labels, cache_path=str(cache)
        )
        served = np.asarray(model.predict(inputs, context).labels)
        diff = np.abs(served - reference)
        rows.append(
            {
                "prompt": name,
                "classes": len(labels),
                "n": len(inputs),
                "argmax_agreement": float((served.argmax(1) == reference.argmax(1)).mean()),
                "mean_abs_diff": float(diff.mean()),
                "p90_row_max_diff": float(np.quantile(diff.max(1), 0.9)),
                "unmatched_share": context.details["openai"]["unmatched_share"],
            }
        )
        print(f"  agreement {name}: done", file=sys.stderr, flush=True)
    return rows


def tables(rows: list[dict[str, Any]], agree: list[dict[str, Any]]) -> str:
    lines = [
        "| run | inputs | seconds | labelled inputs/s | requests | cache hits | retries | tokens |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['inputs']} | {r['seconds']:.2f} | {r['per_second']:.1f} | {r['requests']} | "
            f"{r['cache_hits']} | {r['retries']} | {r['tokens']} |"
        )
    if agree:
        lines += [
            "",
            "| prompt | classes | texts | argmax agreement | mean abs. difference | p90 of row max difference "
            "| unmatched (openai) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for a in agree:
            lines.append(
                f"| {a['prompt']} | {a['classes']} | {a['n']} | {a['argmax_agreement']:.3f} | "
                f"{a['mean_abs_diff']:.4f} | {a['p90_row_max_diff']:.4f} | {a['unmatched_share']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="texts of the builtin U to label")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 is best on a busy 2-core box)")
    parser.add_argument(
        "--agreement", type=int, default=0, metavar="N", help="also compare with hf-prompted on N texts"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-openai.md"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")

    from fute_kit.atomic import atomic_write_text
    from fute_kit_openai.local_server import start_local_server

    inputs = load_u(args.n)
    with start_local_server(parallel=max(args.concurrency), threads=args.threads) as server:
        rows = throughput(server, inputs, args.concurrency)
        agree = agreement(server, load_u(args.agreement)) if args.agreement else []
    table = tables(rows, agree)
    print(table)
    command = "python bench/openai_throughput.py " + " ".join(sys.argv[1:])
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    text = (
        "# openai model source: throughput against the local llama.cpp server\n\n"
        f"Command: `{command}`  \n"
        f"Date: {datetime.now(UTC).isoformat(timespec='minutes')}; machine: {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {load[0]:.1f} at the end (other jobs ran "
        f"beside it); server: xllamacpp (llama.cpp), SmolLM2-135M-Instruct Q4_1, {args.threads} thread(s), "
        f"{max(args.concurrency)} slots.  \n"
        "Inputs: the builtin U (`unlabeled`), chat endpoint, mode logprobs (top_logprobs 20, max_tokens 3); "
        "each concurrency level starts with a fresh response cache; the last row reruns the same study from "
        "the cache and must make 0 requests.\n\n"
        f"{table}\n"
    )
    if agree:
        text += (
            "\nAgreement: soft labels of the same prompts and texts from hf-prompted (transformers, float32 weights "
            "dequantised from the same GGUF) and from this source (llama.cpp, Q4_1). Differences are absolute "
            "differences of class probabilities.\n"
        )
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
