"""Which path labels texts faster with a named local LLM: the llama.cpp server (``openai`` source) or transformers?

Labels the same texts of a builtin test split with one few-shot prompt through (1) the local xllamacpp server at
several concurrency levels (each with a fresh response cache; Q4_K_M weights) and (2) ``hf-prompted`` (transformers,
weights dequantised from the same GGUF to float32), and reports labelled texts per second, prompt tokens per text,
accuracy and the argmax agreement of the two paths. The model must be fetched first (``fute llm fetch NAME``).

    .venv/bin/python bench/llm_paths.py --model qwen2.5-coder-1.5b-instruct --n 32 --concurrency 1 2 4

Prints a markdown table and writes bench/RESULTS-llm-paths.md (bench/RESULTS-llm-paths-<model>.md for another
model). Not part of ``make bench``: the model is an opt-in 1.1 GB download.
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

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
SYSTEM = "You label movie review snippets by sentiment. Answer with one word: positive or negative."
PROMPT = "Review: {text}\nSentiment:"
LABELS = {"positive": ["positive"], "negative": ["negative"]}
FEW_SHOT = [
    {"text": "a gorgeous, witty and deeply moving film.", "label": "positive"},
    {"text": "tedious, predictable and far too long.", "label": "negative"},
]


def load_texts(dataset: str, n: int) -> Any:
    from fute_kit.components import RunContext
    from fute_kit_hf.datasets import BuiltinDataset

    return BuiltinDataset(dataset=dataset, split="test", limit=n).load(RunContext(show_progress=False))


def served(model_name: str, inputs: Any, levels: list[int], threads: int) -> tuple[list[dict[str, Any]], Any]:
    from fute_kit.components import RunContext
    from fute_kit_hf.prompted import prompt_accuracy
    from fute_kit_openai.local_server import start_local_server
    from fute_kit_openai.source import OpenAIModel

    rows, labels = [], None
    with start_local_server(model_name, parallel=max(levels), threads=threads, ctx_per_slot=1024) as server:
        for level in levels:
            cache = Path(tempfile.mkdtemp(prefix="fute-bench-")) / "responses.sqlite"
            model = OpenAIModel(
                model=server.model, base_url=server.base_url, prompt=PROMPT, labels=LABELS, system=SYSTEM,
                few_shot=FEW_SHOT, concurrency=level, cache_path=str(cache),
            )  # fmt: skip
            context = RunContext(cache_dir=cache.parent, show_progress=False)
            started = time.perf_counter()
            out = model.predict(inputs, context)
            seconds = time.perf_counter() - started
            labels = np.asarray(out.labels)
            accounting = context.details["accounting"]
            rows.append(
                {
                    "path": f"server (llama.cpp Q4_K_M), concurrency {level}",
                    "seconds": seconds,
                    "per_second": len(inputs) / seconds,
                    "prompt_tokens": accounting["prompt_tokens"] / len(inputs),
                    "accuracy": prompt_accuracy(out, inputs),
                }
            )
            print(f"  server concurrency {level}: {seconds:.1f}s", file=sys.stderr, flush=True)
    return rows, labels


def transformers_path(model_name: str, inputs: Any, batch_size: int) -> tuple[dict[str, Any], Any]:
    from fute_kit.components import RunContext, default_cache_dir
    from fute_kit_hf.prompted import HFPrompted, load_lm, prompt_accuracy

    source = HFPrompted(
        prompt=PROMPT, labels=LABELS, path=model_name, system=SYSTEM, few_shot=FEW_SHOT, batch_size=batch_size
    )
    started = time.perf_counter()
    _, tokenizer = load_lm(model_name, cache_dir=default_cache_dir())
    load_seconds = time.perf_counter() - started
    context = RunContext(cache_dir=default_cache_dir(), show_progress=False)
    started = time.perf_counter()
    out = source.predict(inputs, context)
    labels = np.asarray(out.labels)
    seconds = time.perf_counter() - started
    rendered = [source.render(tokenizer, text, None, True) for text in inputs.texts]
    tokens = np.mean([len(tokenizer(text, add_special_tokens=False).input_ids) for text in rendered])
    row = {
        "path": f"transformers (float32 dequantised), batch {batch_size}; load {load_seconds:.0f}s not counted",
        "seconds": seconds,
        "per_second": len(inputs) / seconds,
        "prompt_tokens": float(tokens),
        "accuracy": prompt_accuracy(out, inputs),
    }
    print(f"  transformers: load {load_seconds:.1f}s, label {seconds:.1f}s", file=sys.stderr, flush=True)
    return row, labels


def table(rows: list[dict[str, Any]], n: int) -> str:
    lines = [
        "| path | texts | seconds | labelled texts/s | prompt tokens/text | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {n} | {r['seconds']:.1f} | {r['per_second']:.2f} | {r['prompt_tokens']:.0f} | "
            f"{r['accuracy']:.3f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]]) -> str:
    """The faster path: the best server level against transformers (its model load not counted)."""
    server = max((r for r in rows if r["path"].startswith("server")), key=lambda r: r["per_second"])
    hf = [r for r in rows if r["path"].startswith("transformers")]
    if not hf:
        return ""
    ratio = server["per_second"] / hf[0]["per_second"]
    faster = "the server" if ratio >= 1 else "transformers"
    return (
        f"\nFaster path: {faster} ({server['path']}: {server['per_second']:.3f} labelled texts/s; transformers: "
        f"{hf[0]['per_second']:.3f}; ratio {ratio:.2f}, transformers' model load not counted).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model of `fute llm list`")
    parser.add_argument("--dataset", default="rt-sentiment", help="builtin labelled dataset (test split)")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads")
    parser.add_argument("--batch-size", type=int, default=8, help="hf-prompted prompts per forward pass")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    for key, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("HF_HUB_DISABLE_UPDATE_CHECK", "1"),
        ("TOKENIZERS_PARALLELISM", "false"),
    ):
        os.environ.setdefault(key, value)

    from fute_kit.atomic import atomic_write_text
    from fute_kit.local_models import fetched_path

    fetched_path(args.model)  # fail before any work when the model is not fetched
    inputs = load_texts(args.dataset, args.n)
    rows, served_labels = served(args.model, inputs, args.concurrency, args.threads)
    if not args.skip_transformers:
        row, hf_labels = transformers_path(args.model, inputs, args.batch_size)
        rows.append(row)
        agree = float((served_labels.argmax(1) == hf_labels.argmax(1)).mean())
    text = table(rows, len(inputs))
    print(text)
    load = os.getloadavg()
    header = (
        f"# {args.model}: labelled texts per second, server vs transformers\n\n"
        f"Command: `python bench/llm_paths.py {' '.join(sys.argv[1:])}`  \n"
        f"Date: {datetime.now(UTC).isoformat(timespec='minutes')}; machine: {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}) shared with other jobs (load average {load[0]:.1f} at the "
        f"end); llama.cpp {args.threads} thread(s). {args.dataset} test split, {len(inputs)} texts, a system line, "
        "two few-shot examples, chat template; soft labels from the first answer token.\n\n"
    )
    footer = "" if args.skip_transformers else f"\nArgmax agreement, server (last level) vs transformers: {agree:.3f}\n"
    footer += verdict(rows)
    suffix = "" if args.model == DEFAULT_MODEL else f"-{args.model}"
    out = args.out or Path(__file__).with_name(f"RESULTS-llm-paths{suffix}.md")
    atomic_write_text(out, header + text + "\n" + footer)
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
