"""The main job: every kind of subject in one space, offline, on the builtin data.

1. Fine-tune one small classifier per builtin dataset (cached after the first run).
2. One study: DTEs of the builtin datasets; MTEs of the classifiers, of prior-only controls, and of an LLM
   with two prompts per genre (sentiment, topic, subjectivity) — through ``hf-prompted`` by default,
   through ``openai`` when a server URL is given.
3. Measure each prompt's real accuracy on its genre's test split (cached), and evaluate how well the
   embedding similarity ranks the prompts against it, beside the label-free baselines.
4. The HTML report.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from fute_kit.plugin import RunContext, StudyFolder, atomic_write_text, canonical_json, load_dataset
from fute_kit_demo.prompts import PROMPTS
from fute_kit_demo.summary import summarise

DATASETS: tuple[str, ...] = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")
LLM_NAME = "smollm2"


@attrs.frozen
class DemoPlan:
    """What the demo runs and at which sizes; the defaults are the ``quick`` size (see ``SIZES``)."""

    out_dir: Path = attrs.field(converter=Path)
    dataset_limit: int = 160  # examples per DTE
    unlabeled_limit: int = 100  # texts of U labelled by each model
    test_limit: int = 40  # test examples per prompt accuracy
    classifier_limit: int = 320  # training examples per fine-tuned classifier
    classifier_epochs: int = 2
    controls: bool = True  # shuffled-labels and random-head controls beside each classifier
    method: str = "taskemb"
    method_options: dict[str, Any] = attrs.field(factory=lambda: {"epochs": 2, "seed": 0})
    server_url: str | None = None  # an OpenAI-compatible endpoint serving the LLM
    server_model: str = "smollm2"
    cache_dir: Path | None = None


# Named sizes of ``fute demo --size``. quick: what fits about 10 minutes on 2 CPU cores (bench/RESULTS-demo.md);
# headline: the sizes of docs/results.md §1, where every classifier found its dataset under 3 seeds (a GPU's job:
# about an hour on 2 CPU cores).
SIZES: dict[str, dict[str, int]] = {
    "quick": {"dataset_limit": 160, "unlabeled_limit": 100, "classifier_limit": 320, "classifier_epochs": 2},
    "headline": {"dataset_limit": 400, "unlabeled_limit": 400, "classifier_limit": 1000, "classifier_epochs": 3},
}
EPOCHS = {"quick": 2, "headline": 3}  # taskemb/tupate training epochs per embedding at each size


def _classifier_dir(cache_dir: Path, dataset: str) -> Path:
    return cache_dir / "demo" / "classifiers" / f"minilm-{dataset}"


def finetune_classifiers(plan: DemoPlan, context: RunContext, echo: Callable[[str], None]) -> dict[str, str]:
    """The demo's fine-tuned models, cached: model name -> folder.

    ``classifier-D`` per builtin dataset D; with ``plan.controls`` also ``shuffled-D`` (the same recipe on
    permuted labels) and ``random-head-D`` (an untrained head).
    """
    from fute_kit_demo.controls import random_head_model, shuffled_labels

    folders = {}
    for index, dataset in enumerate(DATASETS):
        train = load_dataset("builtin", dataset=dataset, split="train", limit=plan.classifier_limit)
        test = load_dataset("builtin", dataset=dataset, split="test", limit=plan.test_limit)
        folder = _classifier_dir(context.cache_dir, dataset)
        folders[f"classifier-{dataset}"] = _finetune(plan, train, test, folder, context, echo)
        if plan.controls:
            folder = folder.with_name(f"{folder.name}-shuffled")
            folders[f"shuffled-{dataset}"] = _finetune(plan, shuffled_labels(train), test, folder, context, echo)
            folder = context.cache_dir / "demo" / "random-head" / f"minilm-{dataset}-head{index}"
            folders[f"random-head-{dataset}"] = random_head_model(train.label_names, folder, index, context.cache_dir)
    return folders


def _finetune(
    plan: DemoPlan, train: Any, test: Any, folder: Path, context: RunContext, echo: Callable[[str], None]
) -> str:
    from fute_kit_hf import finetune_classifier, read_finetune_info

    started = time.perf_counter()
    # bfloat16 autocast where native: 1.6x faster at equal test accuracy (bench/RESULTS-finetune-precision.md)
    path = finetune_classifier(
        train, folder, "minilm", eval_examples=test, epochs=plan.classifier_epochs, precision="auto", context=context
    )
    accuracy = (read_finetune_info(path) or {}).get("metrics", {}).get("eval_accuracy")
    took = time.perf_counter() - started
    shown = "?" if accuracy is None else f"{accuracy:.2f}"
    echo(f"  {folder.name}: test accuracy {shown} ({took:.0f} s{', cached' if took < 5 else ''})")
    return path


def study_config(plan: DemoPlan, classifiers: dict[str, str], priors: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The demo's study, as the dict a TOML file would give (``fute run`` accepts the same)."""
    prompts = {name: spec for genre in PROMPTS.values() for name, spec in genre.items()}
    if plan.server_url:
        # A chat API cannot be handed the start of the answer: read the first answer token instead.
        prompts = {name: {k: v for k, v in spec.items() if k != "answer_prefix"} for name, spec in prompts.items()}
        llm: dict[str, Any] = {
            "name": LLM_NAME,
            "source": "openai",
            "base_url": plan.server_url,
            "model": plan.server_model,
            "prompts": prompts,
        }
    else:
        llm = {"name": LLM_NAME, "source": "hf-prompted", "path": "smollm2", "prompts": prompts}
    return {
        "space": {"surrogate": "minilm", "method": plan.method, "options": plan.method_options},
        "unlabeled": {"source": "builtin", "name": "unlabeled", "limit": plan.unlabeled_limit},
        "datasets": [{"name": d, "source": "builtin", "split": "train", "limit": plan.dataset_limit} for d in DATASETS],
        "models": [
            *({"name": name, "source": "hf", "path": folder} for name, folder in classifiers.items()),
            *({"name": f"prior-{d}", "source": "constant", "probabilities": priors[d]} for d in DATASETS),
            llm,
        ],
    }


def label_priors(plan: DemoPlan) -> dict[str, dict[str, float]]:
    """Each dataset's label distribution: the prior-only control 'models'."""
    priors = {}
    for dataset in DATASETS:
        examples = load_dataset("builtin", dataset=dataset, split="train", limit=plan.dataset_limit)
        dist = examples.label_distribution()
        priors[dataset] = {name: round(float(p), 6) for name, p in zip(examples.label_names, dist, strict=True)}
    return priors


def measure_prompts(plan: DemoPlan, config: Any, echo: Callable[[str], None]) -> tuple[Path, dict[str, float]]:
    """Each prompt's accuracy on its genre's test split, written as the truth file (cached by content).

    Returns the truth file and the accuracies by model name.
    """
    from fute_kit.plugin import measure_accuracy, write_truth

    truth = plan.out_dir / "prompt-accuracy.csv"
    stamp = truth.with_suffix(".json")
    key = hashlib.sha256(canonical_json([config.raw, plan.test_limit]).encode()).hexdigest()[:16]
    if truth.exists() and stamp.exists() and (cached := json.loads(stamp.read_text())).get("key") == key:
        echo("  prompt accuracies: cached")
        return truth, {row["model"]: row["accuracy"] for row in cached["accuracies"]}
    rows = []
    for dataset, prompts in PROMPTS.items():
        names = [f"{LLM_NAME}/{p}" for p in prompts]
        measured = measure_accuracy(config, dataset, split="test", limit=plan.test_limit, models=names)
        rows.extend(measured)
        for _, model, accuracy in measured:
            echo(f"  {model:<40} accuracy on {dataset} test: {accuracy:.2f}")
    write_truth(rows, truth)
    # The accuracies again, with what they were measured on; "key" lets a rerun of the same study reuse them.
    measured_on = {"split": "test", "limit": plan.test_limit, "key": key}
    accuracies = [{"dataset": d, "model": m, "accuracy": round(a, 4)} for d, m, a in rows]
    atomic_write_text(stamp, json.dumps({**measured_on, "accuracies": accuracies}, indent=2))
    return truth, {m: a for _, m, a in rows}


def run_demo(plan: DemoPlan, echo: Callable[[str], None] = print, show_progress: bool = True) -> Path:
    from fute_kit.plugin import evaluate_study, parse_config, run_study, write_evaluation
    from fute_kit_report import build_report

    started = time.perf_counter()
    context = RunContext(show_progress=show_progress, **({"cache_dir": plan.cache_dir} if plan.cache_dir else {}))
    controls = " and its shuffled-labels and random-head controls" if plan.controls else ""
    echo(f"1/4 fine-tuning a MiniLM classifier per builtin dataset{controls}")
    classifiers = finetune_classifiers(plan, context, echo)
    config = parse_config(study_config(plan, classifiers, label_priors(plan)), path="fute demo")
    echo(f"2/4 embedding {len(config.datasets)} datasets and {len(config.models)} models in {config.space.describe()}")
    result = run_study(config, plan.out_dir, cache_dir=context.cache_dir, show_progress=show_progress)
    for outcome in result.failures:
        echo(f"  FAILED {outcome.kind}:{outcome.name}: {outcome.error}")
    echo("3/4 measuring each prompt's accuracy (the truth prompt selection is judged against)")
    truth, accuracies = measure_prompts(plan, config, echo)
    evaluation = evaluate_study(plan.out_dir, truth)
    write_evaluation(evaluation, StudyFolder(plan.out_dir).evaluation_json)
    echo("4/4 writing the report")
    build_report(plan.out_dir)
    summary = summarise(result.similarity, accuracies)
    atomic_write_text(plan.out_dir / "demo-summary.md", summary)
    echo(summary)
    echo(f"done in {time.perf_counter() - started:.0f} s")
    return StudyFolder(plan.out_dir).report_html
