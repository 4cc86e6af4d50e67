"""The Python API: embed datasets and models, compare them. No configuration file needed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fute_kit.components import RunContext
from fute_kit.embedding import Space, TaskEmbedding
from fute_kit.errors import DataError
from fute_kit.examples import Examples
from fute_kit.pipeline import embed_examples
from fute_kit.predictions import check_predictions
from fute_kit.registry import Registry, get_registry
from fute_kit.similarity import SimilarityMatrix, similarity_matrix


def make_space(surrogate: str, method: str, registry: Registry | None = None, **options: Any) -> Space:
    """A space with the method's options validated and completed with their defaults."""
    from fute_kit.options import options_of

    registry = registry or get_registry()
    spec = registry.get("method", method)
    return Space(surrogate, spec.name, options_of(spec.build(options)))


def load_dataset(
    source: str, *, registry: Registry | None = None, limit: int | None = None, **options: Any
) -> Examples:
    """Load examples from a registered dataset source, e.g. ``load_dataset("builtin", name="bbc-topic")``."""
    registry = registry or get_registry()
    spec = registry.get("dataset_source", source)
    if limit is not None:
        from fute_kit.options import option_fields

        if "limit" in {f.name for f in option_fields(spec.cls)}:
            options["limit"] = limit
    examples = spec.build(options).load(RunContext())
    return examples.sample(limit) if limit is not None else examples


def load_model(source: str, *, registry: Registry | None = None, **options: Any) -> Any:
    """A configured model source, e.g. ``load_model("hf", path="my-classifier")``."""
    return (registry or get_registry()).build("model_source", source, options)


def embed_dataset(
    examples: Examples,
    space: Space,
    name: str | None = None,
    *,
    context: RunContext | None = None,
    registry: Registry | None = None,
) -> TaskEmbedding:
    """The dataset task embedding (DTE) of labelled examples."""
    if examples.label_kind == "none":
        raise DataError(f"dataset {examples.name or name!r} has no labels: a DTE needs labelled examples")
    return embed_examples(
        examples,
        space,
        "dataset",
        name or examples.name or "dataset",
        registry or get_registry(),
        context or RunContext(),
    )


def embed_model(
    model: Any,
    unlabeled: Examples,
    space: Space,
    name: str | None = None,
    *,
    context: RunContext | None = None,
    registry: Registry | None = None,
) -> TaskEmbedding:
    """The model task embedding (MTE): the method run on U labelled by the model's own outputs.

    ``model`` is a model source, or any object a plugin's ``adapt_model`` hook accepts
    (for example a loaded transformers classifier with the HuggingFace plugin).
    """
    registry = registry or get_registry()
    context = context or RunContext()
    source = registry.adapt_model(model)
    inputs = unlabeled.unlabeled().require_nonempty()
    subject = name or getattr(source, "name", None) or type(model).__name__
    # The checks the pipeline applies (one label of a known kind per input), so a bad source fails the same way.
    predictions = check_predictions(subject, source.predict(inputs, context), inputs)
    return embed_examples(predictions, space, "model", subject, registry, context)


def compare(
    embeddings: Sequence[TaskEmbedding],
    metric: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    registry: Registry | None = None,
) -> SimilarityMatrix:
    """Pairwise similarities (the method's declared metric unless one is named)."""
    return similarity_matrix(embeddings, metric, options, registry=registry)
