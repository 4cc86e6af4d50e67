"""Fixtures of the core's tests (the throwaway plugins live in toy_plugins.py)."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from toy_plugins import LABELS, TEXTS, ToyPlugin

os.environ.setdefault("FUTE_KIT_NO_PROGRESS", "1")
EXPERIMENTS = Path(__file__).parents[1] / "experiments"


@pytest.fixture(scope="session")
def load_experiment() -> Callable[[str], ModuleType]:
    """An ``experiments/NAME.py`` script as a module (its folder on sys.path: the scripts import one another)."""

    def load(name: str) -> ModuleType:
        if str(EXPERIMENTS) not in sys.path:
            sys.path.insert(0, str(EXPERIMENTS))
        spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def toy_registry(fute_registry: Any) -> Any:
    return fute_registry(ToyPlugin())


@pytest.fixture
def study_config() -> dict[str, Any]:
    return {
        "space": {"surrogate": "none", "method": "label-stats", "options": {"buckets": 3}},
        "unlabeled": {"source": "inline", "texts": [*TEXTS, "good and bad", "so good", "so bad"]},
        "datasets": [
            {"name": "reviews", "source": "inline", "texts": TEXTS, "labels": LABELS},
            {"name": "flipped", "source": "inline", "texts": TEXTS, "labels": LABELS[::-1]},
        ],
        "models": [
            {"name": "good-detector", "source": "keyword", "keyword": "good"},
            {"name": "prior", "source": "constant", "probabilities": {"negative": 0.5, "positive": 0.5}},
        ],
    }
