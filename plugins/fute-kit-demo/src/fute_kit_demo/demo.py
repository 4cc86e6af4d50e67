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

DATASETS: tuple[str, ...] = ("bbc-topic", "rt-sentiment", "rt-subjectivity", "convention-party")
LLM_NAME = "smollm2"


@attrs.frozen
class DemoPlan:
    """Sizes of the demo, chosen to finish within 10 minutes on 2 CPU cores."""

    out_dir: Path = attrs.field(converter=Path)
    dataset_limit: int = 160  # examples per DTE
    unlabeled_limit: int = 100  # texts of U labelled by each model
    test_limit: int = 40  # test examples per prompt accuracy
    classifier_limit: int = 320  # training examples per fine-tuned classifier
    classifier_epochs: int = 2
    method: str = "taskemb"
    method_options: dict[str, Any] = attrs.field(factory=lambda: {"epochs": 2, "seed": 0})
    server_url: str | None = None  # an OpenAI-compatible endpoint serving the LLM
    server_model: str = "smollm2"
    cache_dir: Path | None = None


def _classifier_dir(cache_dir: Path, dataset: str) -> Path:
    return cache_dir / "demo" / "classifiers" / f"minilm-{dataset}"


def finetune_classifiers(plan: DemoPlan, context: RunContext, echo: Callable[[str], None]) -> dict[str, str]:
    """One MiniLM classifier per builtin dataset; returns dataset -> model folder (cached)."""
    from fute_kit_hf import finetune_classifier, read_finetune_info

    folders = {}
    for dataset in DATASETS:
        train = load_dataset("builtin", dataset=dataset, split="train", limit=plan.classifier_limit)
        test = load_dataset("builtin", dataset=dataset, split="test", limit=plan.test_limit)
        started = time.perf_counter()
        folder = finetune_classifier(
            train,
            _classifier_dir(context.cache_dir, dataset),
            "minilm",
            eval_examples=test,
            epochs=plan.classifier_epochs,
            context=context,
        )
        info = read_finetune_info(folder) or {}
        accuracy = info.get("metrics", {}).get("eval_accuracy")
        took = time.perf_counter() - started
        echo(
            f"  classifier for {dataset}: test accuracy {accuracy if accuracy is None else f'{accuracy:.2f}'} "
            f"({took:.0f} s{', cached' if took < 5 else ''})"
        )
        folders[dataset] = folder
    return folders


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
            *({"name": f"classifier-{d}", "source": "hf", "path": classifiers[d]} for d in DATASETS),
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


def measure_prompts(plan: DemoPlan, config: Any, echo: Callable[[str], None]) -> Path:
    """Each prompt's accuracy on its genre's test split, written as the truth file (cached by content)."""
    from fute_kit.plugin import measure_accuracy, write_truth

    truth = plan.out_dir / "prompt-accuracy.csv"
    stamp = truth.with_suffix(".json")
    key = hashlib.sha256(canonical_json([config.raw, plan.test_limit]).encode()).hexdigest()[:16]
    if truth.exists() and stamp.exists() and json.loads(stamp.read_text()).get("key") == key:
        echo("  prompt accuracies: cached")
        return truth
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
    return truth


def run_demo(plan: DemoPlan, echo: Callable[[str], None] = print, show_progress: bool = True) -> Path:
    from fute_kit.plugin import evaluate_study, parse_config, run_study, write_evaluation
    from fute_kit_report import build_report

    started = time.perf_counter()
    context = RunContext(show_progress=show_progress, **({"cache_dir": plan.cache_dir} if plan.cache_dir else {}))
    echo("1/4 fine-tuning a MiniLM classifier per builtin dataset")
    classifiers = finetune_classifiers(plan, context, echo)
    config = parse_config(study_config(plan, classifiers, label_priors(plan)), path="fute demo")
    echo(f"2/4 embedding {len(config.datasets)} datasets and {len(config.models)} models in {config.space.describe()}")
    result = run_study(config, plan.out_dir, cache_dir=context.cache_dir, show_progress=show_progress)
    for outcome in result.failures:
        echo(f"  FAILED {outcome.kind}:{outcome.name}: {outcome.error}")
    echo("3/4 measuring each prompt's accuracy (the truth prompt selection is judged against)")
    truth = measure_prompts(plan, config, echo)
    evaluation = evaluate_study(plan.out_dir, truth)
    write_evaluation(evaluation, StudyFolder(plan.out_dir).evaluation_json)
    echo("4/4 writing the report")
    build_report(plan.out_dir)
    summary = summarise(result.similarity)
    atomic_write_text(plan.out_dir / "demo-summary.md", summary)
    echo(summary)
    echo(f"done in {time.perf_counter() - started:.0f} s")
    return StudyFolder(plan.out_dir).report_html


def summarise(matrix: Any) -> str:
    """Which dataset each model is most similar to (classifiers, priors, prompts)."""
    if matrix is None:
        return "no embeddings were computed"
    lines = ["| model | most similar dataset | similarity | its own genre |", "|---|---|---|---|"]
    datasets = [label for label in matrix.labels if label.startswith("dataset:")]
    for label in matrix.labels:
        if not label.startswith("model:"):
            continue
        name = label.removeprefix("model:")
        sims = {d: matrix.get(label, d) for d in datasets}
        best = max(sims, key=sims.__getitem__)
        own = _own_dataset(name)
        # A tie (e.g. the zero embedding of a prior-only model) is nobody's nearest dataset.
        unique = sum(v == sims[best] for v in sims.values()) == 1
        hit = "" if own is None else ("yes" if unique and best == f"dataset:{own}" else f"no ({own})")
        nearest = best.removeprefix("dataset:") if unique else "(none: a tie)"
        lines.append(f"| {name} | {nearest} | {sims[best]:.3f} | {hit} |")
    return "\n".join(lines) + "\n"


def _own_dataset(model: str) -> str | None:
    for prefix in ("classifier-", "prior-"):
        if model.startswith(prefix):
            return model.removeprefix(prefix)
    if "/" in model:
        prompt = model.split("/", 1)[1]
        for dataset, prompts in PROMPTS.items():
            if prompt in prompts:
                return dataset
    return None
