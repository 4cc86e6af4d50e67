"""Fixtures of the core's tests (the throwaway plugins live in toy_plugins.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from toy_plugins import LABELS, TEXTS, ToyPlugin

os.environ.setdefault("FUTE_KIT_NO_PROGRESS", "1")


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
