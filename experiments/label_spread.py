"""Does the method read how sure a model is as part of what its task is? One model's labels made less or more sure.

experiments/NOTES.md ("LLM prompts", the study of 2026-11-27 04:51) finds that an LLM prompt whose soft labels on U
are close to uniform lands near the least sure classifier's MTE (convention-party), even where its answers follow
its own genre's classifier. This
separates the two causes. For each seed, in section 1's space (the study of ``--config`` with its DTEs reused from
``--reuse-embeddings``), it embeds on the same U:

- each fine-tuned classifier of ``--classifiers`` with its soft labels mixed with the uniform distribution,
  ``p' = keep * p + (1 - keep) / classes``, for every ``--keep``: the same answers, less sure;
- each prompt of ``--config`` named by ``--prompt`` with its soft labels sharpened, ``p' ~ p ** (1 / T)``, for
  every ``--temperature``: the same answers, surer (the LLM's answers come from the response cache);

and reports each MTE's most similar DTE with its margin, next to the spread of its labels (the standard deviation
of the class probabilities over U). A model source ``reshaped-labels`` wraps the original one for this.

    .venv/bin/python experiments/label_spread.py --out runs/label-spread \\
        --config docs/examples/llm-prompts-gemma.toml --prompt gemma-sentiment/few-shot \\
        --reuse-embeddings 'runs/m2d-large/seed-{seed}/embeddings' --classifiers runs/m2d-large/cache/finetuned
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))
from llm_prompts import find_classifiers, genre_of, retrieval_rows, reuse_store, run_seed, study_data

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit.hookspecs import hookimpl
from fute_kit.options import option


@attrs.frozen
class ReshapedLabels:
    """Another model's soft labels, sharpened (temperature below 1) and then mixed with the uniform distribution."""

    name = "reshaped-labels"

    inner: dict[str, Any] = option(help="the wrapped model entry: its source and that source's options")
    keep: float = option(1.0, help="share of the model's own probabilities; the rest is uniform")
    temperature: float = option(1.0, help="p ** (1 / temperature), renormalised; below 1 makes the labels surer")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        from fute_kit.registry import get_registry

        options = {k: v for k, v in self.inner.items() if k != "source"}
        predicted = get_registry().build("model_source", self.inner["source"], options).predict(inputs, context)
        if predicted.label_kind != "soft":
            raise SystemExit(f"reshaped-labels: {self.inner['source']!r} gave {predicted.label_kind} labels, not soft")
        probabilities = np.asarray(predicted.labels, dtype=np.float64)
        if self.temperature != 1.0:
            # in log space, so that tiny probabilities do not underflow before renormalising
            logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / self.temperature
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
        probabilities = self.keep * probabilities + (1.0 - self.keep) / probabilities.shape[1]
        return inputs.with_predictions(probabilities.astype(np.float32), "soft", predicted.label_names)


@hookimpl
def register_model_sources(register: Any) -> None:
    register(ReshapedLabels)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="docs/examples/llm-prompts-gemma.toml", help="study TOML with prompts")
    parser.add_argument("--prompt", action="append", default=[], help="a prompt of --config to sharpen; repeatable")
    parser.add_argument("--out", required=True, help="output folder (one study per seed below it, and results.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--keep", type=float, nargs="+", default=[1.0, 0.4], help="for the classifiers (1: unchanged, a baseline)"
    )
    parser.add_argument(
        "--temperature", type=float, nargs="+", default=[1.0, 0.25], help="for the prompts (1: unchanged)"
    )
    parser.add_argument("--classifiers", required=True, metavar="FOLDER", help="as in llm_prompts.py")
    parser.add_argument("--reuse-embeddings", required=True, metavar="PATTERN", help="as in llm_prompts.py")
    parser.add_argument("--train-limit", type=int, default=400)
    parser.add_argument("--u-limit", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.option = []  # study_data's method options beyond section 1's
    if any(not 0.0 <= k <= 1.0 for k in args.keep) or any(t <= 0 for t in args.temperature):
        parser.error("--keep values lie in [0, 1] and --temperature values are positive")
    return args


def variants(data: dict[str, Any], prompts: Sequence[str], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The models to embed: each classifier as it is and less sure, each chosen prompt as it is and surer."""
    from fute_kit.config import parse_config
    from fute_kit.registry import get_registry

    entries = {m.name: m for m in parse_config(data, get_registry(), args.config).models}
    missing = [p for p in prompts if p not in entries]
    if missing:
        raise SystemExit(f"--prompt: {', '.join(missing)} not in {args.config}; it has {', '.join(entries)}")
    models = []
    for name, ref in entries.items():
        inner = {"source": ref.source, **ref.options}
        if name.startswith("clf-"):
            models += [{"name": f"{name}@keep={k:g}", "source": "reshaped-labels", "inner": inner, "keep": k}
                       for k in args.keep]  # fmt: skip
        elif name in prompts:
            models += [{"name": f"{name}@T={t:g}", "source": "reshaped-labels", "inner": inner, "temperature": t}
                       for t in args.temperature]  # fmt: skip
    return models


def spread(folder: Path, outcome: Any, inputs: Examples) -> float:
    from fute_kit.predictions import PredictionCache

    labels = PredictionCache(folder / "predictions").get(outcome.fingerprint, inputs)
    return float(np.asarray(labels.labels).std(axis=0).mean()) if labels is not None else float("nan")


def main(argv: Sequence[str] | None = None) -> None:
    import logging

    import transformers

    from fute_kit.atomic import atomic_write_text
    from fute_kit.config import parse_config
    from fute_kit.pipeline import load_examples
    from fute_kit.plugins import PluginHost
    from fute_kit.registry import Registry, set_registry

    args = parse_args(argv)
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("fute_kit").setLevel(logging.WARNING)
    host = PluginHost.discover()
    host.register(sys.modules[__name__], name="label-spread-experiment")
    registry = Registry(host)
    set_registry(registry)
    classifiers = find_classifiers(args.classifiers)
    out = Path(args.out)
    started = time.perf_counter()
    table: dict[str, dict[int, tuple[str, float, bool]]] = {}
    spreads: dict[str, float] = {}
    for seed in args.seeds:
        folder = out / f"seed-{seed}"
        reuse_store(args.reuse_embeddings, seed, folder / "embeddings")
        data = study_data(args, seed, classifiers)
        data["models"] = variants(data, args.prompt, args)
        config = parse_config(data, registry, f"{args.config} (seed {seed})")
        result, _, matrix = run_seed(config, folder, registry, args.quiet)
        inputs = load_examples(config.unlabeled, registry, RunContext(show_progress=False)).unlabeled()
        models = [o for o in result.outcomes if o.kind == "model"]
        # "clf-rt-sentiment@keep=0.4" and "gemma-sentiment/few-shot@T=0.25" are both of the sentiment genre
        genres = {o.name: g for o in models if (g := genre_of(o.name.removeprefix("clf-").split("@")[0], {}))}
        for row in retrieval_rows(matrix, seed, genres):
            table.setdefault(row["model"], {})[seed] = (row["top1"], row["margin"], row["correct"])
        for outcome in models:
            spreads.setdefault(outcome.name, spread(folder, outcome, inputs))
        print(f"seed {seed}: done at {time.perf_counter() - started:.0f} s", flush=True)

    lines = [
        f"# Label spread and the MTE: `{args.config}`",
        "",
        "Command: `.venv/bin/python experiments/label_spread.py " + " ".join(sys.argv[1:]) + "`",
        "",
        f"Seeds {args.seeds}; MTEs on {args.u_limit} texts of U; epochs {args.epochs}; max_length {args.max_length}. "
        f"Wall time {time.perf_counter() - started:.0f} s. Spread: standard deviation of the class probabilities "
        "over U, averaged over classes.",
        "",
        "| model | spread | " + " | ".join(f"seed {s}: most similar (margin)" for s in args.seeds) + " | own |",
        "|---|---:|" + "---|" * len(args.seeds) + "---|",
    ]
    for name, by_seed in table.items():
        cells = [
            f"{'**' if hit else ''}{best}{'**' if hit else ''} ({margin:+.3f})"
            for s in args.seeds
            for best, margin, hit in [by_seed.get(s, ("-", float("nan"), False))]
        ]
        hits = sum(hit for _, _, hit in by_seed.values())
        lines.append(f"| {name} | {spreads[name]:.2f} | " + " | ".join(cells) + f" | {hits}/{len(by_seed)} |")
    report = "\n".join(lines) + "\n"
    atomic_write_text(out / "results.md", report)
    print(report)


if __name__ == "__main__":
    main()
