"""The demo's non-trivial controls: models that label U text by text but know nothing of their dataset's task.

- shuffled-labels: the classifier's recipe on its training examples with the labels permuted (same classes and
  balance, no link between a text and its label);
- random-head: the surrogate with a classification head for the dataset's classes left at its random start.

An MTE that reads the task should not find the dataset from these (docs/results.md §1: at small sizes they do
as often as the classifiers, which is why the demo prints them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

SHUFFLE_SEED = 0  # the permutation of the shuffled-labels controls' training labels


def shuffled_labels(examples: Any, seed: int = SHUFFLE_SEED) -> Any:
    """The same texts with their labels permuted."""
    order = np.random.default_rng(seed).permutation(len(examples))
    return attrs.evolve(examples, labels=examples.labels[order], name=f"{examples.name}-shuffled{seed}")


def random_head_model(label_names: tuple[str, ...], folder: Path, head_seed: int, cache_dir: Path) -> str:
    """MiniLM with an untrained head for ``label_names`` (drawn from ``head_seed``), saved once; its folder.

    Each dataset gets its own head seed: binary datasets would otherwise share one identical model.
    """
    marker = folder / "random_head.json"
    info = {"base": "minilm", "head_seed": head_seed, "label_names": list(label_names)}
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == info:
        return str(folder)
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from fute_kit.plugin import atomic_folder, atomic_write_text
    from fute_kit_hf import local_or_hub, quiet_transformers

    base = local_or_hub("minilm", cache_dir)
    torch.manual_seed(head_seed)  # from_pretrained draws the new head's weights from the global generator
    with quiet_transformers():  # the "newly initialised head" report is this control's point
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(label_names),
            id2label=dict(enumerate(label_names)),
            label2id={name: i for i, name in enumerate(label_names)},
        )
    with atomic_folder(folder) as staging:  # an interrupted run leaves the old folder or the new one, never half
        model.save_pretrained(staging)
        AutoTokenizer.from_pretrained(base).save_pretrained(staging)
        atomic_write_text(staging / marker.name, json.dumps(info, indent=2))
    return str(folder)
