"""The contrast's null task is trained once per (surrogate, texts, prior, options) and shared through the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit_hf.null_task import NullTaskCache
from fute_kit_taskemb.method import TaskEmb

OPTIONS = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "device": "cpu", "contrast": "prior"}


def _context(folder: Path) -> RunContext:
    return RunContext(cache_dir=folder, show_progress=False)


def _relabelled(examples: Examples, labels: list[int], name: str) -> Examples:
    return Examples(examples.texts, np.array(labels), "hard", examples.label_names, name=name)


def _cached_files(folder: Path) -> list[Path]:
    return sorted((folder / "null-task" / "taskemb").glob("*.npz"))


def test_subjects_with_one_null_task_share_it_bit_identically(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path
) -> None:
    surrogate = tiny_model_dir("bert")
    shuffled = _relabelled(hard_examples, list(np.random.default_rng(1).permutation(hard_examples.labels)), "shuffled")
    shared = _context(tmp_path / "shared")
    first = TaskEmb(**OPTIONS).embed(hard_examples, surrogate, shared)
    second = TaskEmb(**OPTIONS).embed(shuffled, surrogate, shared)
    assert first.details["null_task_reused"] is False
    assert second.details["null_task_reused"] is True  # same texts, same prior (8/8): no second training
    assert first.details["null_task_key"] == second.details["null_task_key"]
    assert len(_cached_files(tmp_path / "shared")) == 1
    alone = TaskEmb(**OPTIONS).embed(shuffled, surrogate, _context(tmp_path / "alone"))
    assert alone.details["null_task_reused"] is False
    assert np.array_equal(second.array, alone.array)  # sharing changes nothing, to the bit
    assert not np.array_equal(first.array, second.array)


@pytest.mark.parametrize("change", ["prior", "seed", "text", "option", "surrogate"])
def test_another_null_task_is_not_shared(
    change: str, tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path
) -> None:
    context = _context(tmp_path)
    TaskEmb(**OPTIONS).embed(hard_examples, tiny_model_dir("bert"), context)
    options, examples, surrogate = dict(OPTIONS), hard_examples, tiny_model_dir("bert")
    if change == "prior":  # 10 positive of 16 instead of 8
        examples = _relabelled(hard_examples, [1] * 10 + [0] * 6, "skewed")
    elif change == "seed":
        options["seed"] = 1
    elif change == "text":
        texts = (*hard_examples.texts[:-1], "an entirely different last review")
        examples = Examples(texts, hard_examples.labels, "hard", hard_examples.label_names, name="other-text")
    elif change == "option":
        options["components"] = "layers"
    else:
        surrogate = tiny_model_dir("bert", seed=1)  # same architecture and tokenizer, other weights
    result = TaskEmb(**options).embed(examples, surrogate, context)
    assert result.details["null_task_reused"] is False
    assert len(_cached_files(tmp_path)) == 2


def test_a_corrupt_cache_file_is_recomputed_and_rewritten(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path
) -> None:
    surrogate = tiny_model_dir("bert")
    context = _context(tmp_path)
    clean = TaskEmb(**OPTIONS).embed(hard_examples, surrogate, context)
    (path,) = _cached_files(tmp_path)
    path.write_bytes(path.read_bytes()[:100])  # a partial file (a non-atomic copy, a full disk)
    again = TaskEmb(**OPTIONS).embed(hard_examples, surrogate, context)
    assert again.details["null_task_reused"] is False
    assert np.array_equal(again.array, clean.array)
    cache = NullTaskCache(path.parent)
    assert cache.load(again.details["null_task_key"]) is not None  # rewritten whole
    third = TaskEmb(**OPTIONS).embed(hard_examples, surrogate, context)
    assert third.details["null_task_reused"] is True and np.array_equal(third.array, clean.array)


def test_a_null_task_that_stops_early(
    tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path
) -> None:
    """null_stop_loss ends the null task's training (the prior: flat after a few steps), never the task's."""
    from fute_kit.embedding import Space
    from fute_kit.options import options_of

    surrogate = tiny_model_dir("bert")
    full = TaskEmb(**OPTIONS, null_stop_loss=0.0).embed(hard_examples, surrogate, _context(tmp_path))
    stopped = TaskEmb(**OPTIONS, null_stop_loss=10.0).embed(hard_examples, surrogate, _context(tmp_path))
    assert stopped.details["steps"] == full.details["steps"]  # the task trained every step
    assert stopped.details["null_task_key"] != full.details["null_task_key"]
    assert not np.array_equal(stopped.array, full.array) and len(_cached_files(tmp_path)) == 2
    zero = options_of(TaskEmb(**OPTIONS, null_stop_loss=0.0))  # as spaces stored before the option existed
    before = {k: v for k, v in zero.items() if k != "null_stop_loss"}
    assert Space("s", "taskemb", zero).id == Space("s", "taskemb", before).id
    # a group does not stack a null task that ends at its own step: embed trains it alone, as one at a time does
    grouped = TaskEmb(**OPTIONS, null_stop_loss=10.0).embed_group([hard_examples], surrogate, _context(tmp_path / "g"))
    assert grouped[0].details["null_task_key"] == stopped.details["null_task_key"]
