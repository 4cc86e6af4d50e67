"""What each kind of component must provide.

A component is an attrs class whose fields are its options (validated before any work starts);
a plugin registers the class under a name. These protocols say which methods an instance has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import attrs
import numpy as np

from fute_kit.examples import Examples

T = TypeVar("T")

KINDS: tuple[str, ...] = ("dataset_source", "model_source", "method", "metric", "executor")


@attrs.define
class RunContext:
    """What a running component may use: a cache folder, a logger and progress bars."""

    cache_dir: Path = attrs.field(factory=lambda: default_cache_dir(), converter=Path)
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("fute_kit"))
    show_progress: bool = True
    details: dict[str, Any] = attrs.field(factory=dict)

    def record(self, key: str, value: Any) -> None:
        """Add a detail (accounting, warnings...) to the provenance of the embedding being made."""
        self.details[key] = value

    def progress(self, iterable: Iterable[T], *, total: int | None = None, desc: str = "") -> Iterator[T]:
        from fute_kit.progress import progress

        return progress(iterable, total=total, desc=desc, enabled=self.show_progress)


def default_cache_dir() -> Path:
    import os

    root = os.environ.get("FUTE_KIT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fute_kit"
    )
    return Path(root)


@runtime_checkable
class DatasetSource(Protocol):
    """Loads labelled (or, for U, unlabelled) examples."""

    def load(self, context: RunContext) -> Examples: ...


@runtime_checkable
class ModelSource(Protocol):
    """A black-box model: labels the given inputs with its own outputs (soft labels or scores).

    Optional: ``prompt_log_likelihood(inputs, context) -> np.ndarray``, for each input the mean log-probability
    of the tokens of the model's prompt filled with that input (the prompt text itself, not an answer). ``fute
    evaluate`` ranks prompts by it (SPELL, ``fute_kit.prompt_perplexity``); a source that has the method but
    cannot serve it in a given setup raises ``NotImplementedError`` with the reason, and SPELL is then reported
    unavailable instead of failing the evaluation.
    """

    def predict(self, inputs: Examples, context: RunContext) -> Examples: ...


@attrs.frozen
class MethodResult:
    """What a method returns: the embedding array and details for the provenance."""

    array: np.ndarray
    details: dict[str, Any] = attrs.field(factory=dict)
    warnings: list[str] = attrs.field(factory=list)


@runtime_checkable
class Method(Protocol):
    """Turns labelled examples into a task embedding with a surrogate model.

    ``default_metric`` is the metric (name, options) its embeddings are compared with unless the
    user chooses one. A method whose metric depends on its options may also define a classmethod
    ``metric_for(options) -> (name, options)``, which then takes precedence. Before any job starts
    (``fute_kit.preflight``), a method's optional ``check_surrogate(surrogate) -> str | None`` says why a
    surrogate cannot be used (without loading it), and an optional ``min_examples`` (int, default 2) how
    many examples a dataset or U needs. An optional ``embed_group(items, surrogate, context) -> list[MethodResult]``
    embeds several subjects at once (one result per item, in order); group jobs call it
    (``fute_kit.job_groups``) and embed the items one at a time when it raises.
    """

    default_metric: ClassVar[tuple[str, dict[str, Any]]]

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult: ...


@runtime_checkable
class Metric(Protocol):
    """Pairwise similarity of a collection of embedding arrays (higher is more similar)."""

    def matrix(self, arrays: Sequence[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class Executor(Protocol):
    """Runs independent jobs and yields each result (or exception) as it finishes."""

    def run(
        self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]
    ) -> Iterator[tuple[int, Any, BaseException | None]]: ...
