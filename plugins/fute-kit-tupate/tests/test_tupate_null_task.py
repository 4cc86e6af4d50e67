"""TuPaTE's null task (prompts tuned on the prior-labelled texts) is tuned once and shared through the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit_tupate.method import TuPaTE

OPTIONS = {"epochs": 2, "batch_size": 8, "length": 4, "early_stopping_fraction": 0.0, "device": "cpu"}


def _examples(n: int = 16) -> Examples:
    words = ["good", "great", "fine", "bad", "awful", "poor"]
    texts = [f"the film was {words[i % 6]} and the cast was {words[(i * 5) % 6]} indeed" for i in range(n)]
    labels = ["positive" if i % 6 < 3 else "negative" for i in range(n)]
    return Examples.from_hard_labels(texts, labels, name="toy")


def test_tuned_null_prompts_are_shared_bit_identically(tiny_model_dir: Callable[..., str], tmp_path: Path) -> None:
    surrogate = tiny_model_dir("bert")
    examples = _examples()
    shuffled = Examples(
        examples.texts,
        np.random.default_rng(3).permutation(examples.labels),
        "hard",
        examples.label_names,
        name="shuffled",
    )
    shared = RunContext(cache_dir=tmp_path / "shared", show_progress=False)
    first = TuPaTE(**OPTIONS).embed(examples, surrogate, shared)
    second = TuPaTE(**OPTIONS).embed(shuffled, surrogate, shared)
    assert first.details["null_task_reused"] is False and second.details["null_task_reused"] is True
    alone = TuPaTE(**OPTIONS).embed(shuffled, surrogate, RunContext(cache_dir=tmp_path / "alone", show_progress=False))
    assert alone.details["null_task_reused"] is False
    assert np.array_equal(second.array, alone.array)
    other_variant = TuPaTE(**OPTIONS, variant="bitfit").embed(examples, surrogate, shared)
    assert other_variant.details["null_task_reused"] is False
    assert len(list((tmp_path / "shared" / "null-task" / "tupate").glob("*.npz"))) == 2
