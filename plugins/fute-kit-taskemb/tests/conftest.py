"""Fixtures of the taskemb tests: the hf plugin's tiny-model fixtures, and small labelled datasets.

The hf plugin's ``conftest.py`` builds tiny random models of each family; it is loaded here by path
(a conftest is not importable as a module) and its fixtures re-exported.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fute_kit.examples import Examples

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_HF_CONFTEST = Path(__file__).resolve().parents[2] / "fute-kit-hf" / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("fute_kit_hf_test_fixtures", _HF_CONFTEST)
assert _spec is not None and _spec.loader is not None, f"{_HF_CONFTEST} is missing"
_hf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hf)

hf_cache_dir = _hf.hf_cache_dir
minilm_dir = _hf.minilm_dir
smollm2_tokenizer_dir = _hf.smollm2_tokenizer_dir
tiny_model_dir = _hf.tiny_model_dir

FAMILIES = ("bert", "t5", "gpt2", "llama")

POSITIVE = [
    "a wonderful film",
    "great acting and a moving story",
    "i loved every minute",
    "superb and funny",
    "a delight from start to end",
    "warm, clever and touching",
    "the best movie this year",
    "truly great fun",
]
NEGATIVE = [
    "a dull mess",
    "boring and far too long",
    "i hated the plot",
    "awful acting throughout",
    "a waste of two hours",
    "clumsy, loud and stupid",
    "the worst film this year",
    "painfully bad jokes",
]


@pytest.fixture(scope="session")
def hard_examples() -> Examples:
    texts = POSITIVE + NEGATIVE
    labels = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    return Examples.from_hard_labels(texts, labels, name="tiny-sentiment")


@pytest.fixture(scope="session")
def soft_examples(hard_examples: Examples) -> Examples:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.0, 1.0], size=len(hard_examples))
    return Examples(
        texts=hard_examples.texts, labels=probs, label_kind="soft", label_names=("a", "b", "c"), name="tiny-soft"
    )


@pytest.fixture(scope="session")
def regression_examples(hard_examples: Examples) -> Examples:
    scores = np.linspace(0.0, 5.0, len(hard_examples))
    return Examples(texts=hard_examples.texts, labels=scores, label_kind="regression", name="tiny-regression")


@pytest.fixture(scope="session")
def context(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from fute_kit.components import RunContext

    return RunContext(cache_dir=tmp_path_factory.mktemp("taskemb-cache"), show_progress=False)
