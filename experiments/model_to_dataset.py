"""Does a model's task embedding find the dataset it was trained on? (and is it stable across seeds?)

1. Fine-tune one MiniLM classifier per builtin labelled dataset (``finetune_classifier``, cached).
2. For each seed: one study through the core pipeline (``parse_config`` + ``run_study``) with
   - DTEs of the 4 builtin datasets (train split, ``--train-limit`` examples),
   - MTEs of each classifier on U (builtin ``unlabeled``, ``--u-limit`` texts),
   - MTEs of three controls per dataset, none of which knows the task:
     * prior-only: the ``constant`` model source answering every text with the dataset's label prior (under
       taskemb's default ``contrast = "prior"`` it embeds to zero by construction, so it proves little alone);
     * random-head: the surrogate with a classification head for the dataset's classes left at its random
       initialisation (seed ``RANDOM_HEAD_SEED``), fine-tuned for zero steps: text-dependent, task-free labels;
     * shuffled-labels: fine-tuned with the classifier's recipe on the same examples with their labels permuted
       (seed ``SHUFFLE_SEED``): trained, same classes and balance, no task.
     A control must NOT find its dataset as well as the real model does, or the embedding only encodes the
     number and balance of classes (or the surrogate itself).
3. Report: each model's most similar DTE (top-1 accuracy over models x seeds) and its margin
   (similarity to its own DTE minus the best other DTE); seed stability, from one similarity matrix of every
   embedding of every seed: is an embedding under one seed more similar to the same subject under the other
   seeds than to any other subject of its group (classifiers, each kind of control, DTEs), and than to any
   other embedding at all (classifiers, controls and DTEs together).

Writes ``<out>/results.md`` (and prints it), ``results.json``, ``retrieval.csv``, ``summary.csv`` and
``stability.csv``. See experiments/README.md for the command and timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATASETS = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")
# The model name's prefix says what a model is: "clf-bbc-topic" is the classifier of bbc-topic.
KINDS = {"clf": "classifier", "prior": "prior-only", "random": "random-head", "shuffled": "shuffled-labels"}
RANDOM_HEAD_SEED = 0  # the head of every random-head control (fixed: seeds vary the method, not the control)
SHUFFLE_SEED = 0  # the permutation of the shuffled-labels controls' training labels


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (one study per seed below it, and results.md)")
    parser.add_argument("--method", default="taskemb", help="embedding method: taskemb, textemb, tupate...")
    parser.add_argument("--surrogate", default="minilm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    # The defaults are the sizes of docs/results.md's headline tables (about an hour on 2 CPU cores, 2 minutes
    # on a GPU); --train-limit 160 --u-limit 120 --ft-limit 320 --epochs 2 is the quick run (~12 minutes).
    parser.add_argument("--train-limit", type=int, default=400, help="examples per dataset for its DTE")
    parser.add_argument("--u-limit", type=int, default=400, help="texts of U for each MTE")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text (method and classifiers)")
    parser.add_argument("--epochs", type=int, default=3, help="method training epochs (when it has that option)")
    parser.add_argument("--ft-limit", type=int, default=1000, help="training examples of each fine-tuned classifier")
    parser.add_argument("--ft-epochs", type=int, default=3)
    parser.add_argument(
        "--controls",
        choices=("all", "prior"),
        default="all",
        help="all: prior-only, random-head and shuffled-labels controls; prior: prior-only only (the earlier runs)",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another method option (VALUE read as JSON when it parses, else as a string); repeatable",
    )
    parser.add_argument("--cache", default=None, help="cache folder (fine-tuned classifiers); default: <out>/cache")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="compute nothing: report on the embeddings already stored under --out (e.g. of an interrupted run)",
    )
    return parser.parse_args(argv)


def method_options(registry: Any, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The options this method has among seed, epochs, max_length and device, plus ``--option`` values."""
    from fute_kit.options import option_fields

    fields = {f.name for f in option_fields(registry.get("method", args.method).cls)}
    wanted = {"seed": seed, "epochs": args.epochs, "max_length": args.max_length, "device": args.device}
    options = {k: v for k, v in wanted.items() if k in fields}
    return {**options, **parse_option_values(args.option)}


def parse_option_values(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as options; VALUE is read as JSON when it parses, else kept as a string."""
    options: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def finetune_all(args: argparse.Namespace, cache: Path, context: Any) -> dict[str, dict[str, Any]]:
    """The fine-tuned models, by model name: {"clf-DATASET": {"path", "accuracy", "seconds", "dataset"}, ...}.

    One classifier per dataset; with ``--controls all`` also its shuffled-labels and random-head controls.
    """
    from fute_kit_hf.datasets import BuiltinDataset

    models = {}
    for name in DATASETS:
        train = BuiltinDataset(dataset=name, split="train", limit=args.ft_limit, seed=100).load(context)
        test = BuiltinDataset(dataset=name, split="test", limit=200).load(context)
        folder = cache / "finetuned" / f"{name}-n{args.ft_limit}-e{args.ft_epochs}"
        models[f"clf-{name}"] = finetune_one(name, train, test, folder, args, context)
        if args.controls == "all":
            shuffled = shuffled_labels(train, SHUFFLE_SEED)
            folder = cache / "finetuned" / f"{name}-shuffled{SHUFFLE_SEED}-n{args.ft_limit}-e{args.ft_epochs}"
            models[f"shuffled-{name}"] = finetune_one(name, shuffled, test, folder, args, context)
            models[f"random-{name}"] = random_head_classifier(name, train, test, cache, args, context)
        for model in ("clf", "shuffled", "random"):
            if f"{model}-{name}" in models:
                info = models[f"{model}-{name}"]
                print(f"{model}-{name}: test accuracy {info['accuracy']} ({info['seconds']} s)", flush=True)
    return models


def finetune_one(
    name: str, train: Any, test: Any, folder: Path, args: argparse.Namespace, context: Any
) -> dict[str, Any]:
    """Fine-tune (or find cached) one classifier with the experiment's recipe; its folder and test accuracy."""
    from fute_kit_hf.finetune import finetune_classifier, read_finetune_info

    started = time.perf_counter()
    path = finetune_classifier(
        train,
        folder,
        base=args.surrogate,
        eval_examples=test,
        epochs=args.ft_epochs,
        max_length=args.max_length,
        device=args.device,
        context=context,
    )
    accuracy = (read_finetune_info(path) or {}).get("metrics", {}).get("eval_accuracy")
    seconds = round(time.perf_counter() - started, 1)
    return {"path": path, "accuracy": accuracy, "seconds": seconds, "dataset": name}


def shuffled_labels(examples: Any, seed: int) -> Any:
    """The same texts with their hard labels permuted: same classes and balance, no link between text and label."""
    import attrs

    order = np.random.default_rng(seed).permutation(len(examples))
    return attrs.evolve(examples, labels=examples.labels[order], name=f"{examples.name}-shuffled{seed}")


def random_head_classifier(
    name: str, train: Any, test: Any, cache: Path, args: argparse.Namespace, context: Any
) -> dict[str, Any]:
    """The surrogate with a fresh head for ``train``'s classes, trained for zero steps, saved once (cached).

    The ``hf`` model source then loads it like any fine-tuned classifier; its test accuracy is measured too.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fute_kit.atomic import atomic_write_text
    from fute_kit_hf.models import classify, local_or_hub

    started = time.perf_counter()
    names = list(train.label_names)
    folder = cache / "random-head" / f"{name}-{Path(args.surrogate).name}-head{RANDOM_HEAD_SEED}"
    info_path = folder / "random_head.json"
    if not info_path.is_file():
        base = local_or_hub(args.surrogate, context.cache_dir)
        torch.manual_seed(RANDOM_HEAD_SEED)  # the head's weights are drawn here, at from_pretrained
        model = AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
        ).eval()
        tokenizer = AutoTokenizer.from_pretrained(base)
        predictions = classify(
            model, tokenizer, test.unlabeled(), context, batch_size=64, max_length=args.max_length, where=folder.name
        )
        accuracy = float(np.mean(predictions.labels.argmax(axis=1) == test.labels))
        tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, folder)
        info = {"base": args.surrogate, "head_seed": RANDOM_HEAD_SEED, "label_names": names, "accuracy": accuracy}
        atomic_write_text(info_path, json.dumps(info, indent=2))  # last: marks the folder complete
    accuracy = json.loads(info_path.read_text(encoding="utf-8"))["accuracy"]
    seconds = round(time.perf_counter() - started, 1)
    return {"path": str(folder), "accuracy": accuracy, "seconds": seconds, "dataset": name}


def stored_models(cache: Path) -> dict[str, dict[str, Any]]:
    """The fine-tuned classifiers and controls found in the cache (for --report-only)."""
    from fute_kit_hf.finetune import read_finetune_info

    models = {}
    for name in DATASETS:
        for model, pattern in (("clf", f"{name}-n*"), ("shuffled", f"{name}-shuffled*-n*")):
            for folder in sorted((cache / "finetuned").glob(pattern)):
                info = read_finetune_info(folder) or {}
                accuracy = info.get("metrics", {}).get("eval_accuracy")
                models[f"{model}-{name}"] = {"path": str(folder), "accuracy": accuracy, "dataset": name}
        for folder in sorted((cache / "random-head").glob(f"{name}-*")):
            if not (folder / "random_head.json").is_file():
                continue  # still being written by a run in progress
            info = json.loads((folder / "random_head.json").read_text(encoding="utf-8"))
            models[f"random-{name}"] = {"path": str(folder), "accuracy": info["accuracy"], "dataset": name}
    return models


def study_config(
    args: argparse.Namespace,
    registry: Any,
    seed: int,
    models: dict[str, dict[str, Any]],
    priors: dict[str, dict[str, float]],
) -> dict[str, Any]:
    datasets = [
        {"name": name, "source": "builtin", "dataset": name, "split": "train", "limit": args.train_limit}
        for name in DATASETS
    ]
    entries = [
        {"name": model, "source": "hf", "path": info["path"], "max_length": args.max_length, "device": args.device}
        for model, info in models.items()
    ]
    entries += [{"name": f"prior-{name}", "source": "constant", "probabilities": priors[name]} for name in DATASETS]
    return {
        "space": {"surrogate": args.surrogate, "method": args.method, "options": method_options(registry, args, seed)},
        "unlabeled": {"source": "builtin", "dataset": "unlabeled", "limit": args.u_limit},
        "datasets": datasets,
        "models": entries,
    }


def label_priors(args: argparse.Namespace, context: Any) -> dict[str, dict[str, float]]:
    """Each dataset's label prior on the examples its DTE is made from."""
    from fute_kit_hf.datasets import BuiltinDataset

    priors = {}
    for name in DATASETS:
        examples = BuiltinDataset(dataset=name, split="train", limit=args.train_limit).load(context)
        dist = examples.label_distribution()
        priors[name] = {label: round(float(p), 6) for label, p in zip(examples.label_names, dist, strict=True)}
    return priors


def retrieval_rows(matrix: Any, seed: int) -> list[dict[str, Any]]:
    """For every model: its most similar DTE, whether that is its own dataset, and the margin."""
    rows = []
    dtes = [label for label in matrix.labels if label.startswith("dataset:")]
    for label in matrix.labels:
        if not label.startswith("model:"):
            continue
        kind, own = label.removeprefix("model:").split("-", 1)
        sims = {d.removeprefix("dataset:"): matrix.get(label, d) for d in dtes}
        if own not in sims or len(sims) < 2:
            continue  # an interrupted run without this model's own DTE (or with no other)
        best = max(sims, key=sims.__getitem__)
        others = [v for k, v in sims.items() if k != own]
        rows.append(
            {
                "seed": seed,
                "kind": KINDS.get(kind, kind),
                "model": label,
                "own": own,
                "top1": best,
                "correct": sims[own] > max(others),  # a tie (e.g. an all-zero embedding) is not a hit
                "margin": sims[own] - max(others),
                "own_similarity": sims[own],
            }
        )
    return rows


def subject_group(embedding: Any) -> str:
    """The group an embedding's subject belongs to: "dataset", or the model's kind (classifier, a control)."""
    if embedding.kind == "dataset":
        return "dataset"
    return KINDS.get(embedding.subject.split("-", 1)[0], "model")


def seed_stability(embeddings: list[Any], registry: Any) -> list[dict[str, Any]]:
    """Per (subject, seed): lowest similarity to itself under the other seeds vs the highest to another subject.

    ``embeddings``: every embedding of every seed, compared in one matrix. ``stable``: above every other subject
    of its group (a classifier's MTE against the other classifiers' MTEs, as the issue asks; a control against
    the controls of its kind; a DTE against the other DTEs). ``stable_all``: above every other embedding,
    classifiers, controls and DTEs together.
    """
    from fute_kit.similarity import similarity_matrix

    matrix = similarity_matrix(embeddings, ignore_options=("seed",), registry=registry)
    values = matrix.values
    groups = [subject_group(e) for e in embeddings]
    rows = []
    for i, e in enumerate(embeddings):
        same = [j for j, f in enumerate(embeddings) if j != i and (f.kind, f.subject) == (e.kind, e.subject)]
        other = [j for j, f in enumerate(embeddings) if (f.kind, f.subject) != (e.kind, e.subject)]
        group = [j for j in other if groups[j] == groups[i]]
        if not same or not group:
            continue
        self_min = float(values[i, same].min())
        rows.append(
            {
                "subject": e.subject,
                "kind": e.kind,
                "group": groups[i],
                "seed": e.space.options.get("seed"),
                "self_min": self_min,
                "self_mean": float(values[i, same].mean()),
                "kind_max": float(values[i, group].max()),
                "other_max": float(values[i, other].max()),
                "stable": bool(self_min > values[i, group].max()),
                "stable_all": bool(self_min > values[i, other].max()),
            }
        )
    return rows


def markdown(
    args: argparse.Namespace,
    models: dict[str, dict[str, Any]],
    retrieval: list[dict[str, Any]],
    stability: list[dict[str, Any]],
    timings: dict[str, float],
    warnings: dict[str, list[str]],
) -> str:
    lines = [
        f"# Model -> dataset retrieval: method `{args.method}`, surrogate `{args.surrogate}`",
        "",
        "Command: `.venv/bin/python experiments/model_to_dataset.py " + " ".join(sys.argv[1:]) + "`",
        "",
        f"Seeds {args.seeds}; DTEs on {args.train_limit} train examples per dataset; MTEs on {args.u_limit} texts of "
        f"builtin U; max_length {args.max_length}. "
        + (
            "Report only (stored embeddings; job times are in seed-N/study.json)."
            if args.report_only
            else f"Wall time: fine-tuning {timings['finetune']:.0f} s, studies {timings['studies']:.0f} s, "
            f"total {timings['total']:.0f} s."
        ),
        "",
        "## Classifiers and trained controls (held-out test accuracy, 200 examples)",
        "",
        "| model | accuracy |",
        "|---|---|",
        *[f"| {name} | {info['accuracy']} |" for name, info in models.items()],
        "",
        "## Retrieval: most similar DTE of each MTE",
        "",
        "| kind | top-1 accuracy (models x seeds) | mean margin (own - best other) |",
        "|---|---|---|",
    ]
    for kind in KINDS.values():
        rows = [r for r in retrieval if r["kind"] == kind]
        if rows:
            accuracy = np.mean([r["correct"] for r in rows])
            lines.append(
                f"| {kind} | {accuracy:.2f} ({sum(r['correct'] for r in rows)}/{len(rows)}) | "
                f"{np.mean([r['margin'] for r in rows]):+.3f} |"
            )
    lines += [
        "",
        "| model | " + " | ".join(f"seed {s}: top-1 (margin)" for s in args.seeds) + " |",
        "|---|" + "---|" * len(args.seeds),
    ]
    for model in sorted({r["model"] for r in retrieval}):
        cells = []
        for seed in args.seeds:
            row = next((r for r in retrieval if r["model"] == model and r["seed"] == seed), None)
            cells.append(
                "-"
                if row is None
                else f"{'**' if row['correct'] else ''}{row['top1']}{'**' if row['correct'] else ''} "
                f"({row['margin']:+.3f})"
            )
        lines.append(f"| {model.removeprefix('model:')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        '## Seed stability (similarity across seeds, `ignore_options=("seed",)`)',
        "",
        "One similarity matrix of every embedding of every seed. Stable: the lowest similarity of an embedding to the "
        "same subject under the other seeds is higher than its highest similarity to any other subject of its group "
        "(a classifier's MTE: any other classifier's MTE, any seed; a control: the other controls of its kind; a DTE: "
        "any other DTE). Stable against all: higher than its similarity to any other embedding (classifiers, "
        "controls and DTEs together).",
        "",
        "| subject | stable seeds | stable against all | mean self-similarity across seeds "
        "| max similarity to another of its group | max similarity to any other |",
        "|---|---|---|---|---|---|",
    ]
    for kind, subject in sorted({(r["kind"], r["subject"]) for r in stability}):
        rows = [r for r in stability if (r["kind"], r["subject"]) == (kind, subject)]
        lines.append(
            f"| {kind}:{subject} | {sum(r['stable'] for r in rows)}/{len(rows)} | "
            f"{sum(r['stable_all'] for r in rows)}/{len(rows)} | {np.mean([r['self_mean'] for r in rows]):.3f} | "
            f"{max(r['kind_max'] for r in rows):.3f} | {max(r['other_max'] for r in rows):.3f} |"
        )
    groups = [g for g in ("dataset", *KINDS.values()) if any(r["group"] == g for r in stability)]
    if groups:
        lines += ["", "| group | stable against its group | stable against every other embedding |", "|---|---|---|"]
    for group in groups:
        rows = [r for r in stability if r["group"] == group]
        lines.append(
            f"| {group} | {sum(r['stable'] for r in rows)}/{len(rows)} | "
            f"{sum(r['stable_all'] for r in rows)}/{len(rows)} |"
        )
    if warnings:
        lines += ["", "## Warnings of the method", ""]
        lines += [f"- {label}: {'; '.join(sorted(set(w)))}" for label, w in sorted(warnings.items())]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import transformers

    from fute_kit.atomic import atomic_write_text
    from fute_kit.components import RunContext
    from fute_kit.config import parse_config
    from fute_kit.pipeline import run_study
    from fute_kit.registry import get_registry
    from fute_kit.store import EmbeddingStore

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("fute_kit").setLevel(logging.WARNING)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / "cache"
    out.mkdir(parents=True, exist_ok=True)
    context = RunContext(cache_dir=cache, show_progress=not args.quiet)
    registry = get_registry()
    started = time.perf_counter()
    by_seed: dict[int, list[Any]] = {}
    if args.report_only:
        models = stored_models(cache)
        finetuned = time.perf_counter()
        for seed in args.seeds:
            store = EmbeddingStore(out / f"seed-{seed}" / "embeddings")
            by_seed[seed] = (
                [e for e in store.load_all() if e.space.method == args.method] if store.root.exists() else []
            )
    else:
        models = finetune_all(args, cache, context)
        finetuned = time.perf_counter()
        priors = label_priors(args, context)
        for seed in args.seeds:
            config = parse_config(study_config(args, registry, seed, models, priors), registry, f"seed-{seed}")
            seed_started = time.perf_counter()
            result = run_study(
                config, out / f"seed-{seed}", registry=registry, cache_dir=cache, show_progress=not args.quiet
            )
            if result.failures:
                raise SystemExit("failed jobs: " + "; ".join(f"{o.name}: {o.error}" for o in result.failures))
            store = EmbeddingStore(out / f"seed-{seed}" / "embeddings")
            by_seed[seed] = [store.get(config.space, o.kind, o.name, o.fingerprint) for o in result.outcomes]
            print(f"seed {seed}: {time.perf_counter() - seed_started:.0f} s", flush=True)

    from fute_kit.similarity import similarity_matrix

    retrieval: list[dict[str, Any]] = []
    warnings: dict[str, list[str]] = {}
    for seed, embeddings in by_seed.items():
        if any(e.kind == "dataset" for e in embeddings) and any(e.kind == "model" for e in embeddings):
            retrieval += retrieval_rows(similarity_matrix(embeddings, registry=registry), seed)
        for embedding in embeddings:
            for warning in embedding.provenance.details.get("warnings", []):
                warnings.setdefault(embedding.label, []).append(warning.split(":")[0])

    every = [e for embeddings in by_seed.values() for e in embeddings]
    stability = seed_stability(every, registry) if len(args.seeds) > 1 and every else []
    timings = {
        "finetune": finetuned - started,
        "studies": time.perf_counter() - finetuned,
        "total": time.perf_counter() - started,
    }
    report = markdown(args, models, retrieval, stability, timings, warnings)
    atomic_write_text(out / "results.md", report)
    atomic_write_text(
        out / "results.json",
        json.dumps(
            {"retrieval": retrieval, "stability": stability, "models": models, "timings": timings},
            indent=2,
            default=str,
        ),
    )
    atomic_write_text(out / "retrieval.csv", csv_text(retrieval))
    atomic_write_text(out / "summary.csv", csv_text(retrieval_summary(retrieval)))
    atomic_write_text(out / "stability.csv", csv_text(stability))
    print(report)


def retrieval_summary(retrieval: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per kind of model (classifier, each control) and seed, then over all seeds: hits and mean margin."""
    rows = []
    seeds = sorted({r["seed"] for r in retrieval})
    for kind in KINDS.values():
        for seed in [*seeds, "all"]:
            chosen = [r for r in retrieval if r["kind"] == kind and seed in (r["seed"], "all")]
            if chosen:
                hits = sum(r["correct"] for r in chosen)
                margin = float(np.mean([r["margin"] for r in chosen]))
                rows.append({"kind": kind, "seed": seed, "top1": f"{hits}/{len(chosen)}", "mean_margin": margin})
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows (dicts with the same keys) as CSV; floats with 4 decimals."""
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    return buffer.getvalue()


if __name__ == "__main__":
    main()
