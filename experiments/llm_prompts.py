"""Does each LLM prompt's task embedding find the builtin dataset of its own genre? (over several seeds)

1. Reads a study configuration whose ``[[models]]`` are prompts of an LLM (default:
   ``docs/examples/llm-prompts.toml``, served by the local llama.cpp server) and, for each seed, runs it
   through the core pipeline (``parse_config`` + ``run_study``, output in ``<out>/seed-N/``) with
   - the space options of docs/results.md's section 1 (``--epochs``, ``--max-length``, the seed),
   - DTEs of all 4 builtin labelled datasets (train split, ``--train-limit`` examples), not only the config's,
   - the prompts' MTEs on ``--u-limit`` texts of the config's U.
   LLM answers come from the response cache after the first seed: only the method reruns.
2. Reports, per prompt and seed, the most similar DTE, whether it is the prompt's own genre and the margin
   (own minus best other); each prompt's nearest other prompt (same genre?); seed stability; and, given
   ``--accuracy`` (a ``fute measure`` CSV), each prompt's accuracy on its own dataset.

``--reuse-embeddings 'runs/m2d-large/seed-{seed}/embeddings'`` copies a store made in the same space (for
example by experiments/model_to_dataset.py) into each seed's folder first: its DTEs are then reused, and the
fine-tuned classifiers' MTEs join the report's model-to-model table.

Writes ``<out>/results.md`` (and prints it). See experiments/README.md for the command and timings.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).parent))
from model_to_dataset import DATASETS, parse_option_values, seed_stability

# A prompt's genre is read from its name (genre_of); --genre NAME=DATASET overrides.
GENRE_WORDS = {
    "sentiment": "rt-sentiment",
    "topic": "bbc-topic",
    "subjectivity": "rt-subjectivity",
    "opinion": "rt-subjectivity",
    "party": "convention-party",
    "hedge": "wiki-hedge",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="docs/examples/llm-prompts.toml", help="study TOML with the prompts")
    parser.add_argument("--out", required=True, help="output folder (one study per seed below it, and results.md)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-limit", type=int, default=400, help="examples per dataset for its DTE")
    parser.add_argument("--u-limit", type=int, default=400, help="texts of U for each MTE")
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), help="builtin labelled datasets whose DTEs the prompts meet"
    )
    parser.add_argument(
        "--unlabeled",
        default=None,
        metavar="DATASET|FILE.jsonl",
        help="U instead of the config's: a builtin unlabelled set (unlabeled-genres) or a jsonl file with a text key",
    )
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text")
    parser.add_argument("--epochs", type=int, default=3, help="method training epochs")
    parser.add_argument("--genre", action="append", default=[], metavar="MODEL=DATASET", help="a prompt's genre")
    parser.add_argument("--accuracy", default=None, help="fute measure CSV (target,candidate,score) to report")
    parser.add_argument(
        "--reuse-embeddings", default=None, metavar="PATTERN", help="store to copy first; {seed} is replaced"
    )
    parser.add_argument(
        "--classifiers",
        default=None,
        metavar="FOLDER",
        help="fine-tuned classifiers (model_to_dataset.py's <cache>/finetuned, one DATASET-* folder each) to embed on "
        "the same U as the prompts, as clf-DATASET: a control, and the model-to-model table",
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another method option, e.g. soft_loss=hard (VALUE read as JSON when it parses); repeatable",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def genre_of(name: str, overrides: dict[str, str]) -> str | None:
    """A prompt's genre: --genre, else the first genre word in its LLM's name (``qwen-hedge/poor-sentiment`` is a
    hedging prompt), else in the whole name (``sentiment/few-shot``)."""
    if name in overrides:
        return overrides[name]
    for part in (name.split("/", 1)[0], name):
        found = next((dataset for word, dataset in GENRE_WORDS.items() if word in part), None)
        if found is not None:
            return found
    return None


def find_classifiers(folder: str | None, datasets: Sequence[str]) -> dict[str, Path]:
    """{dataset: fine-tuned classifier folder} from a folder of DATASET-n<examples>-e<epochs> folders."""
    if folder is None:
        return {}
    root = Path(folder)
    found = {d: next(iter(sorted(root.glob(f"{d}-n*"))), None) for d in datasets}
    missing = [d for d, path in found.items() if path is None]
    if not root.is_dir() or missing:
        raise SystemExit(
            f"--classifiers: {root} has no classifier for {', '.join(missing) or 'any dataset'} "
            "(write them with experiments/model_to_dataset.py; they are kept in its <cache>/finetuned)"
        )
    return {d: path for d, path in found.items() if path is not None}


def study_data(args: argparse.Namespace, seed: int, classifiers: dict[str, Path]) -> dict[str, Any]:
    from fute_kit.config import read_toml

    data = read_toml(args.config)
    space = data.setdefault("space", {})
    section = {"epochs": args.epochs, "max_length": args.max_length, "seed": seed}
    space["options"] = {**space.get("options", {}), **section, **parse_option_values(args.option)}
    if getattr(args, "unlabeled", None) and args.unlabeled.endswith(".jsonl"):
        data["unlabeled"] = {"name": Path(args.unlabeled).stem, "source": "files", "path": args.unlabeled}
    elif getattr(args, "unlabeled", None):
        data["unlabeled"] = {"name": args.unlabeled, "source": "builtin", "dataset": args.unlabeled}
    data["unlabeled"] = {**data["unlabeled"], "limit": args.u_limit}
    data["datasets"] = [{"name": d, "source": "builtin", "limit": args.train_limit} for d in args.datasets]
    data["models"] = data.get("models", []) + [
        {"name": f"clf-{d}", "source": "hf", "path": str(path), "max_length": args.max_length}
        for d, path in classifiers.items()
    ]
    return data


def reuse_store(pattern: str, seed: int, target: Path) -> None:
    source = Path(pattern.format(seed=seed))
    if not source.is_dir():
        raise SystemExit(f"--reuse-embeddings: {source} is not a folder (pattern {pattern!r}, seed {seed})")
    shutil.copytree(source, target, dirs_exist_ok=True)


def retrieval_rows(matrix: Any, seed: int, genres: dict[str, str]) -> list[dict[str, Any]]:
    dtes = [label for label in matrix.labels if label.startswith("dataset:")]
    rows = []
    for label in matrix.labels:
        name = label.removeprefix("model:")
        own = genres.get(name)
        if own is None or f"dataset:{own}" not in dtes:
            continue
        sims = {d.removeprefix("dataset:"): matrix.get(label, d) for d in dtes}
        best = max(sims, key=sims.__getitem__)
        other = max(v for k, v in sims.items() if k != own)
        prompts = [m for m in genres if m != name and f"model:{m}" in matrix.labels]
        nearest = max(prompts, key=lambda m: matrix.get(label, f"model:{m}")) if prompts else None
        rows.append(
            {
                "seed": seed,
                "model": name,
                "own": own,
                "top1": best,
                "correct": sims[own] > other,
                "margin": sims[own] - other,
                "nearest_prompt": nearest,
                "nearest_same_genre": nearest is not None and genres[nearest] == own,
            }
        )
    return rows


def read_accuracy(path: str | None) -> dict[str, float]:
    if path is None:
        return {}
    if not Path(path).is_file():
        raise SystemExit(f"--accuracy: {path} does not exist (write it with fute measure ... --out {path})")
    with open(path, newline="") as handle:
        return {row["candidate"]: float(row["score"]) for row in csv.DictReader(handle)}


def markdown(args: argparse.Namespace, rows: list[dict[str, Any]], stability: list[dict[str, Any]],
             accuracy: dict[str, float], seconds: float, model_table: list[str],
             control_rows: list[dict[str, Any]]) -> str:  # fmt: skip
    hits = sum(r["correct"] for r in rows)
    lines = [
        f"# LLM prompts -> dataset of their genre: `{args.config}`",
        "",
        "Command: `.venv/bin/python experiments/llm_prompts.py " + " ".join(sys.argv[1:]) + "`",
        "",
        f"Seeds {args.seeds}; DTEs of {', '.join(args.datasets)} on {args.train_limit} train examples; MTEs on "
        f"{args.u_limit} texts of U; epochs {args.epochs}; max_length {args.max_length}. Wall time {seconds:.0f} s.",
        "",
        f"Own genre most similar: **{hits}/{len(rows)}** (prompts x seeds); mean margin "
        f"{np.mean([r['margin'] for r in rows]):+.3f}. Nearest other prompt of the same genre: "
        f"{sum(r['nearest_same_genre'] for r in rows)}/{len(rows)}.",
        "",
        *(
            [
                f"Control, the fine-tuned classifiers on the same U: own dataset most similar "
                f"{sum(r['correct'] for r in control_rows)}/{len(control_rows)} (models x seeds).",
                "",
            ]
            if control_rows
            else []
        ),
        "| prompt | own dataset | accuracy on it | "
        + " | ".join(f"seed {s}: most similar (margin)" for s in args.seeds)
        + " | own genre | nearest other prompt (seed 0) |",
        "|---|---|---:|" + "---|" * len(args.seeds) + "---|---|",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = {r["seed"]: r for r in rows if r["model"] == model}
        cells = [
            f"{'**' if r['correct'] else ''}{r['top1']}{'**' if r['correct'] else ''} ({r['margin']:+.3f})"
            if (r := mine.get(s))
            else "-"
            for s in args.seeds
        ]
        first = mine[min(mine)]
        acc = f"{accuracy[model]:.3f}" if model in accuracy else "-"
        lines.append(
            f"| {model} | {first['own']} | {acc} | " + " | ".join(cells)
            + f" | {sum(r['correct'] for r in mine.values())}/{len(mine)} | {first['nearest_prompt']} |"
        )  # fmt: skip
    if stability:
        lines += [
            "",
            "Seed stability (an MTE under one seed more similar to the same prompt under the other seeds than to any "
            "other prompt's MTE): " + ", ".join(f"{r}: {n}" for r, n in _stable_counts(stability).items()),
        ]
    lines += model_table
    return "\n".join(lines) + "\n"


def _stable_counts(stability: list[dict[str, Any]]) -> dict[str, str]:
    subjects = dict.fromkeys(r["subject"] for r in stability)
    counts = {}
    for subject in subjects:
        rows = [r for r in stability if r["subject"] == subject]
        counts[subject] = f"{sum(r['stable'] for r in rows)}/{len(rows)}"
    return counts


def model_to_model(by_seed: dict[int, list[Any]], genres: dict[str, str], registry: Any) -> list[str]:
    """Each prompt's most similar fine-tuned classifier (stored as clf-DATASET) per seed, when the store has them."""
    from fute_kit.similarity import similarity_matrix

    best: dict[tuple[str, int], tuple[str, float]] = {}
    for seed, embeddings in by_seed.items():
        classifiers = [e for e in embeddings if e.kind == "model" and e.subject.startswith("clf-")]
        prompts = [e for e in embeddings if e.kind == "model" and e.subject in genres]
        if not classifiers or not prompts:
            continue
        matrix = similarity_matrix(prompts + classifiers, registry=registry)
        for prompt in prompts:
            top = max(classifiers, key=lambda c: matrix.get(prompt.label, c.label))
            best[prompt.subject, seed] = (top.subject, matrix.get(prompt.label, top.label))
    if not best:
        return []
    seeds = sorted({seed for _, seed in best})
    lines = ["", "Most similar fine-tuned classifier MTE (both on U):", "",
             "| prompt | own genre | " + " | ".join(f"seed {s}" for s in seeds) + " | own classifier |",
             "|---|---|" + "---|" * len(seeds) + "---|"]  # fmt: skip
    hits = 0
    for prompt in dict.fromkeys(p for p, _ in best):
        own = f"clf-{genres[prompt]}"
        cells = []
        for seed in seeds:
            subject, similarity = best.get((prompt, seed), ("-", float("nan")))
            mark = "**" if subject == own else ""
            cells.append(f"{mark}{subject}{mark} ({similarity:.3f})")
        found = sum(best.get((prompt, s), ("",))[0] == own for s in seeds)
        hits += found
        lines.append(f"| {prompt} | {genres[prompt]} | " + " | ".join(cells) + f" | {found}/{len(seeds)} |")
    lines += ["", f"Own genre's classifier most similar: {hits}/{len(best)} (prompts x seeds)."]
    return lines


def origins_of(texts: Sequence[str], unlabeled: Any) -> list[str] | None:
    """Each text's ``origin`` when U is a jsonl file (builtin or ``files``) that records one; else None."""
    import json
    from importlib.resources import files

    options = unlabeled.options
    if unlabeled.source == "builtin":
        path = files("fute_kit_hf") / "builtin_data" / f"{options.get('dataset', unlabeled.name)}.jsonl"
    elif unlabeled.source == "files" and str(options.get("path", "")).endswith(".jsonl"):
        path = Path(options["path"])
    else:
        return None
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    origin = {row["text"]: row.get("origin") for row in rows}
    found = [origin.get(text) for text in texts]
    return None if None in found else [str(o) for o in found]


def _mean_correlation(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> str:
    """Pearson correlation of a[:, k] with b[:, k] over the chosen rows, averaged over k (constant columns skipped)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        values = [np.corrcoef(a[rows, k], b[rows, k])[0, 1] for k in range(a.shape[1])]
    finite = [v for v in values if np.isfinite(v)]
    return f"{np.mean(finite):+.2f}" if finite else "-"


def label_agreement(
    folder: Path, config: Any, outcomes: Sequence[Any], genres: dict[str, str], registry: Any
) -> list[str]:
    """How far each prompt's labels on U follow those of its genre's fine-tuned classifier (clf-DATASET).

    Pearson correlation of the two models' probabilities of each class they share, averaged over the classes, on
    all of U and on the texts of each origin; and the spread of the prompt's labels (standard deviation of its
    class probabilities, against the classifier's): the signal its MTE is learned from.
    """
    from fute_kit.components import RunContext
    from fute_kit.pipeline import load_examples
    from fute_kit.predictions import PredictionCache

    inputs = load_examples(config.unlabeled, registry, RunContext(show_progress=False))  # memoised: no reload
    cache = PredictionCache(folder / "predictions")
    labels = {o.name: cache.get(o.fingerprint, inputs) for o in outcomes if o.kind == "model"}
    origins = origins_of(inputs.texts, config.unlabeled)
    groups = sorted(set(origins)) if origins else []
    lines = [
        "",
        "Labels on U against the genre's classifier (seed 0; correlation of class probabilities, averaged over "
        "classes; spread: standard deviation of class probabilities, prompt / classifier):",
        "",
        "| prompt | classifier | correlation | spread | " + " | ".join(groups) + (" |" if groups else ""),
        "|---|---|---:|---:|" + "---:|" * len(groups),
    ]
    for prompt, genre in genres.items():
        mine, theirs = labels.get(prompt), labels.get(f"clf-{genre}")
        if mine is None or theirs is None or mine.label_kind != "soft" or theirs.label_kind != "soft":
            continue
        shared = [c for c in mine.label_names if c in theirs.label_names]
        a = np.asarray(mine.labels)[:, [mine.label_names.index(c) for c in shared]]
        b = np.asarray(theirs.labels)[:, [theirs.label_names.index(c) for c in shared]]
        every = np.ones(len(a), dtype=bool)
        cells = [_mean_correlation(a, b, np.array([o == g for o in origins])) for g in groups] if origins else []
        lines.append(
            f"| {prompt} | clf-{genre} | {_mean_correlation(a, b, every)} | {a.std(axis=0).mean():.2f} / "
            f"{b.std(axis=0).mean():.2f} | " + " | ".join(cells) + (" |" if cells else "")
        )
    return lines if len(lines) > 5 else []


def run_seed(config: Any, folder: Path, registry: Any, quiet: bool) -> tuple[Any, list[Any], Any]:
    """Run one seed's study: (its result, the embeddings it made or reused, their similarity matrix)."""
    from fute_kit.pipeline import run_study
    from fute_kit.similarity import similarity_matrix
    from fute_kit.store import EmbeddingStore

    result = run_study(config, folder, registry=registry, show_progress=not quiet)
    if result.failures:
        raise SystemExit("failed jobs: " + "; ".join(f"{o.name}: {o.error}" for o in result.failures))
    store = EmbeddingStore(folder / "embeddings")
    embeddings = [store.get(config.space, o.kind, o.name, o.fingerprint) for o in result.outcomes]
    return result, embeddings, similarity_matrix(embeddings, registry=registry)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import transformers

    from fute_kit.atomic import atomic_write_text
    from fute_kit.config import parse_config
    from fute_kit.registry import get_registry
    from fute_kit.store import EmbeddingStore

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("fute_kit").setLevel(logging.WARNING)
    overrides = dict(item.split("=", 1) for item in args.genre)
    accuracy = read_accuracy(args.accuracy)  # read before the long work: a wrong path fails at once
    classifier_folders = find_classifiers(args.classifiers, args.datasets)
    classifier_genres = {f"clf-{d}": d for d in classifier_folders}
    out = Path(args.out)
    registry = get_registry()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    control_rows: list[dict[str, Any]] = []
    with_classifiers: dict[int, list[Any]] = {}
    genres: dict[str, str] = {}
    agreement: list[str] = []
    for seed in args.seeds:
        folder = out / f"seed-{seed}"
        if args.reuse_embeddings:
            reuse_store(args.reuse_embeddings, seed, folder / "embeddings")
        config = parse_config(study_data(args, seed, classifier_folders), registry, f"{args.config} (seed {seed})")
        genres = {
            m.name: g for m in config.models if m.name not in classifier_genres and (g := genre_of(m.name, overrides))
        }
        result, embeddings, matrix = run_seed(config, folder, registry, args.quiet)
        store = EmbeddingStore(folder / "embeddings")
        rows += retrieval_rows(matrix, seed, genres)
        control_rows += retrieval_rows(matrix, seed, classifier_genres)
        # this run's prompts, and the classifiers embedded on the same U (--classifiers) or a reused store brought
        if classifier_genres:
            classifiers = [e for e in embeddings if e.subject in classifier_genres]
        else:
            classifiers = [e for e in store.load_all(config.space.id) if e.subject.startswith("clf-")]
        with_classifiers[seed] = [e for e in embeddings if e.subject in genres] + classifiers
        if not agreement and classifier_genres:  # the labels are the same under every seed
            agreement = label_agreement(folder, config, result.outcomes, genres, registry)
        print(f"seed {seed}: done at {time.perf_counter() - started:.0f} s", flush=True)
    every_seed = [e for group in with_classifiers.values() for e in group if e.subject in genres]
    stability = seed_stability(every_seed, registry) if len(args.seeds) > 1 else []
    report = markdown(args, rows, stability, accuracy, time.perf_counter() - started,
                      model_to_model(with_classifiers, genres, registry) + agreement, control_rows)  # fmt: skip
    atomic_write_text(out / "results.md", report)
    print(report)


if __name__ == "__main__":
    main()
