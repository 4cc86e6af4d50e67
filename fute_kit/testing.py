"""Test helpers for plugin authors, loaded by pytest as the ``fute_kit`` plugin.

Fixtures:
- ``fute_host``: a plugin host with the built-in defaults and no entry-point discovery.
- ``fute_registry``: a factory ``fute_registry(*plugins)`` giving a registry of those plugins
  (plus the defaults), installed as the process-wide registry for the test and restored after.

Conformance checks (plain functions, call them in your tests):
``check_dataset_source``, ``check_model_source``, ``check_method``, ``check_metric``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit.plugins import PluginHost
from fute_kit.registry import Registry, set_registry


def make_registry(*plugins: object, builtins: bool = True) -> Registry:
    """A registry of the given plugin objects or modules, without entry-point discovery."""
    host = PluginHost.discover(builtins=builtins, entry_points=False)
    for i, plugin in enumerate(plugins):
        host.register(plugin, name=getattr(plugin, "__name__", f"test-plugin-{i}"))
    return Registry(host)


@pytest.fixture
def fute_host() -> PluginHost:
    return PluginHost.discover(entry_points=False)


@pytest.fixture
def fute_registry() -> Iterator[Callable[..., Registry]]:
    previous: list[Registry | None] = []

    def factory(*plugins: object, builtins: bool = True) -> Registry:
        registry = make_registry(*plugins, builtins=builtins)
        previous.append(set_registry(registry))
        return registry

    try:
        yield factory
    finally:
        if previous:
            set_registry(previous[0])


def _context(tmp_path: Any = None) -> RunContext:
    return RunContext(cache_dir=tmp_path or ".fute-test-cache", show_progress=False)


def check_dataset_source(source: Any, context: RunContext | None = None) -> Examples:
    """A dataset source loads non-empty Examples with a stable fingerprint."""
    examples = source.load(context or _context())
    assert isinstance(examples, Examples), f"load() returned {type(examples).__name__}, not Examples"
    assert len(examples) > 0, "load() returned no examples"
    assert examples.fingerprint() == source.load(context or _context()).fingerprint(), "loading is not deterministic"
    return examples


def check_model_source(model: Any, inputs: Examples, context: RunContext | None = None) -> Examples:
    """A model source labels every input, in order, with soft labels, hard labels or scores."""
    predictions = model.predict(inputs.unlabeled(), context or _context())
    assert isinstance(predictions, Examples), f"predict() returned {type(predictions).__name__}"
    assert predictions.texts == inputs.texts, "predict() must return the inputs in their order"
    assert predictions.label_kind in ("soft", "hard", "regression"), "predict() returned no labels"
    if predictions.label_kind == "soft":
        assert predictions.label_names, "soft labels need label names"
    return predictions


def check_method(method: Any, examples: Examples, surrogate: str, context: RunContext | None = None) -> np.ndarray:
    """A method returns a finite vector or matrix and is deterministic for the same inputs."""
    assert getattr(type(method), "default_metric", None), "a method declares default_metric = (name, options)"
    first = method.embed(examples, surrogate, context or _context())
    array = np.asarray(first.array)
    assert array.ndim in (1, 2) and np.all(np.isfinite(array)), f"bad embedding of shape {array.shape}"
    second = np.asarray(method.embed(examples, surrogate, context or _context()).array)
    np.testing.assert_allclose(array, second, rtol=1e-5, atol=1e-7, err_msg="same inputs gave another embedding")
    return array


def check_metric(metric: Any, arrays: list[np.ndarray] | None = None) -> np.ndarray:
    """A metric gives a symmetric matrix whose diagonal is its maximum per row."""
    rng = np.random.default_rng(0)
    arrays = arrays or [rng.normal(size=(4, 8)) for _ in range(4)]
    matrix = np.asarray(metric.matrix(arrays), dtype=np.float64)
    assert matrix.shape == (len(arrays), len(arrays)), f"matrix shape {matrix.shape}"
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-8, err_msg="similarity must be symmetric")
    assert np.all(np.diag(matrix) >= matrix.max(axis=1) - 1e-8), "each item must be most similar to itself"
    return matrix
