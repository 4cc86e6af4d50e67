"""Measuring the truth of prompt selection: each configured model's accuracy on a labelled dataset.

This runs the models (``fute measure``); its rows are written with ``fute_kit.truth.write_truth``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np

from fute_kit.errors import DataError


def _normalise(name: str) -> str:
    return name.strip().lower()


def _predicted_names(predictions: Any, model: str) -> list[str]:
    """The label name each prediction chose (argmax of soft labels)."""
    if predictions.label_kind == "soft":
        chosen = np.asarray(predictions.labels).argmax(axis=1)
    elif predictions.label_kind == "hard":
        chosen = np.asarray(predictions.labels)
    else:
        raise DataError(
            f"model {model!r} returned {predictions.label_kind} outputs; accuracy needs class labels (soft or hard)"
        )
    names = list(predictions.label_names)
    if not names:
        raise DataError(f"model {model!r} returned labels without label names; its source must name its classes")
    return [names[i] for i in chosen.tolist()]


def _check_label_names(model: str, model_names: Sequence[str], dataset: str, dataset_names: Sequence[str]) -> None:
    if {_normalise(n) for n in model_names} != {_normalise(n) for n in dataset_names}:
        raise DataError(
            f"model {model!r} predicts labels {sorted(model_names)} but dataset {dataset!r} has labels "
            f"{sorted(dataset_names)}; they are matched by name (case-insensitive): make the model's label "
            "names (label words, probabilities keys...) the dataset's"
        )


def _quiet(context: Any) -> Any:
    """The context of the one-input label check: a model's warnings there would count that single input ("for 1
    of 1 inputs..."), so they are left to the full pass, which counts every input (errors still show)."""
    import attrs

    logger = logging.getLogger("fute_kit.measure.label_check")
    logger.setLevel(logging.ERROR)
    return attrs.evolve(context, logger=logger, details={})


@attrs.frozen
class Measurement:
    """Each model's accuracy on a dataset (``dataset, model, accuracy``) and, from the same predictions with the
    labels unused, each label-free score on the dataset's own inputs (``dataset, model, baseline, score``)."""

    accuracy: list[tuple[str, str, float]]
    label_free: list[tuple[str, str, str, float]]


def measure_accuracy(config: Any, dataset: str, **options: Any) -> list[tuple[str, str, float]]:
    """Each configured model's accuracy on a labelled dataset: ``(dataset, model, accuracy)`` (``measure``'s
    keywords: split, limit, models, registry, context)."""
    return measure(config, dataset, **options).accuracy


def measure(
    config: Any,
    dataset: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    models: Sequence[str] = (),
    registry: Any = None,
    context: Any = None,
) -> Measurement:
    """Each configured model's accuracy on a labelled dataset of the study, and its label-free scores there.

    Predictions (argmax) are matched to the dataset's labels by name. Every model is first asked
    for one example so a model whose label names differ fails before the long runs. The ensemble scores (ZPS,
    MDL) need every prompt of a pool in one call: each prompt is scored against those measured with it.
    """
    from fute_kit.components import RunContext
    from fute_kit.label_free import probabilities, scores_of
    from fute_kit.registry import get_registry

    registry = registry or get_registry()
    context = context or RunContext(show_progress=False)
    ref, source = _dataset_source(config, dataset, split, registry)
    model_refs = _chosen_models(config, models)
    built = [
        (m.name, registry.build("model_source", m.source, m.options, owner=f"model {m.name!r}")) for m in model_refs
    ]
    examples = source.load(context).require_nonempty().sample(limit or ref.limit)
    if examples.label_kind != "hard":
        raise DataError(f"dataset {dataset!r} has {examples.label_kind} labels; accuracy needs class labels")
    gold = [_normalise(examples.label_names[i]) for i in np.asarray(examples.labels).tolist()]
    inputs = examples.unlabeled()
    probe_context = _quiet(context)
    for name, model in built:
        probe = model.predict(inputs.select([0]), probe_context)
        _check_label_names(name, probe.label_names, dataset, examples.label_names)
    rows, probs = [], {}
    for name, model in built:
        predictions = model.predict(inputs, context)
        if len(predictions) != len(inputs):
            raise DataError(f"model {name!r} returned {len(predictions)} predictions for {len(inputs)} inputs")
        _check_label_names(name, predictions.label_names, dataset, examples.label_names)
        chosen = [_normalise(n) for n in _predicted_names(predictions, name)]
        accuracy = float(np.mean([a == b for a, b in zip(chosen, gold, strict=True)]))
        rows.append((dataset, name, accuracy))
        probs[f"model:{name}"] = probabilities(predictions)
    scores = scores_of(probs)
    label_free = [
        (dataset, label.removeprefix("model:"), baseline, value)
        for baseline, by_model in scores.items()
        for label, value in by_model.items()
    ]
    return Measurement(rows, label_free)


def _dataset_source(config: Any, dataset: str, split: str | None, registry: Any) -> tuple[Any, Any]:
    """The configured dataset's entry and its source (with ``split`` when asked), or why there is none."""
    import difflib

    from fute_kit.options import option_fields

    by_name = {ref.name: ref for ref in config.datasets}
    if dataset not in by_name:
        close = difflib.get_close_matches(dataset, list(by_name), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"no dataset {dataset!r} in {config.path or 'the configuration'}{hint} "
            f"(its [[datasets]]: {', '.join(by_name) or 'none'})"
        )
    ref = by_name[dataset]
    options = dict(ref.options)
    if split is not None:
        fields = {f.name for f in option_fields(registry.get("dataset_source", ref.source).cls)}
        if "split" not in fields:
            raise DataError(f"dataset {dataset!r}: source {ref.source!r} has no 'split' option; drop --split")
        options["split"] = split
    return ref, registry.build("dataset_source", ref.source, options, owner=f"dataset {dataset!r}")


def _chosen_models(config: Any, models: Sequence[str]) -> list[Any]:
    """The configured models to measure: those named, else all."""
    model_refs = list(config.models)
    if models:
        known = {m.name: m for m in model_refs}
        unknown = [m for m in models if m not in known]
        if unknown:
            raise DataError(
                f"no model {', '.join(repr(m) for m in unknown)} in {config.path or 'the configuration'} "
                f"(its [[models]]: {', '.join(known) or 'none'})"
            )
        model_refs = [known[m] for m in models]
    if not model_refs:
        raise DataError(f"{config.path or 'the configuration'} has no [[models]] to measure")
    return model_refs
