"""TaskEmb.embed_group: the subjects' trainings stacked, results like one at a time, fallbacks exact."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.errors import DataError
from fute_kit.examples import Examples
from fute_kit_hf.training import TrainingOptions
from fute_kit_taskemb.method import TaskEmb

FAST = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "device": "cpu", "null_stop_loss": 0.0}  # null tasks stack
if "precision" in attrs.fields_dict(TaskEmb):
    FAST["precision"] = "fp32"  # the reference path: stacked and one-at-a-time kernels agree to float rounding


def unit_rows(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(unit_rows(a) * unit_rows(b), axis=1)


def flipped(examples: Examples) -> Examples:
    """The same texts with every other label flipped: another task on the same texts, with the same null task."""
    labels = np.array(examples.labels)
    labels[::2] = 1 - labels[::2]
    return Examples(texts=examples.texts, labels=labels, label_kind="hard", label_names=examples.label_names)


def test_group_trains_stacked_and_matches_one_at_a_time(
    tiny_model_dir: Callable[..., str],
    hard_examples: Examples,
    soft_examples: Examples,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def without_dropout(self: TaskEmb, seed: int, **given: object) -> object:
        return TrainingOptions.training_settings(self, seed, dropout=False, **given)

    # Dropout off (both paths): with it on, only the masks differ, which the contrast amplifies on a tiny model.
    monkeypatch.setattr(TaskEmb, "training_settings", without_dropout)
    surrogate = tiny_model_dir("bert")
    method = TaskEmb(**FAST)  # the contrast: each subject's null task is a member too
    items = [hard_examples, soft_examples, flipped(hard_examples)]
    with caplog.at_level(logging.INFO, logger="fute_kit"):
        grouped = method.embed_group(items, surrogate, RunContext(cache_dir=tmp_path / "g", show_progress=False))
    assert "not used" not in caplog.text  # every stacked training was taken by its subject
    alone = [method.embed(x, surrogate, RunContext(cache_dir=tmp_path / "a", show_progress=False)) for x in items]
    # 2-class heads: two tasks and their one shared null task (trained once); 3-class: a task and its null task.
    assert [g.details["stacked_members"] for g in grouped] == [3, 2, 3]
    for group_result, single in zip(grouped, alone, strict=True):
        assert "stacked_members" not in single.details
        assert group_result.array.shape == single.array.shape
        assert set(single.details) <= set(group_result.details)
        assert [w.split(":")[0] for w in group_result.warnings] == [w.split(":")[0] for w in single.warnings]
        assert row_cosines(group_result.array, single.array).min() > 0.999
    # Again on the same cache: the null tasks are read from it, so only the three tasks are trained.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fute_kit"):
        again = method.embed_group(items, surrogate, RunContext(cache_dir=tmp_path / "g", show_progress=False))
    assert "not used" not in caplog.text
    assert [g.details.get("stacked_members") for g in again] == [2, None, 2]  # the 3-class task trains alone
    assert all(g.details["null_task_reused"] for g in again)


@pytest.mark.parametrize(
    ("family", "options"),
    [("gpt2", {}), ("bert", {"early_stopping_fraction": 0.25}), ("bert", {"head_init": "probe"})],
)
def test_what_cannot_be_stacked_runs_one_at_a_time_exactly(
    family: str, options: dict, tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path
) -> None:
    surrogate = tiny_model_dir(family)
    method = TaskEmb(**FAST, contrast="none", **options)
    items = [hard_examples, flipped(hard_examples)]
    grouped = method.embed_group(items, surrogate, RunContext(cache_dir=tmp_path, show_progress=False))
    for group_result, item in zip(grouped, items, strict=True):
        single = method.embed(item, surrogate, RunContext(cache_dir=tmp_path, show_progress=False))
        assert np.array_equal(group_result.array, single.array)
        assert "stacked_members" not in group_result.details


def test_null_items_and_bad_items(tiny_model_dir: Callable[..., str], hard_examples: Examples, tmp_path: Path) -> None:
    surrogate = tiny_model_dir("bert")
    context = RunContext(cache_dir=tmp_path, show_progress=False)
    method = TaskEmb(**FAST, contrast="none")
    constant = np.full((len(hard_examples), 2), 0.5)
    null_item = Examples(texts=hard_examples.texts, labels=constant, label_kind="soft", label_names=("a", "b"))
    grouped = TaskEmb(**FAST).embed_group([null_item, hard_examples], surrogate, context)
    assert not np.any(grouped[0].array) and grouped[0].details["null_task"]
    assert "stacked_members" in grouped[1].details  # the task and its null task: a stack of 2
    unlabelled = Examples(texts=("a", "b"), labels=None, label_kind="none")
    with pytest.raises(DataError, match="no labels"):
        method.embed_group([hard_examples, unlabelled], surrogate, context)
