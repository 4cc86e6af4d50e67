"""A cache of model predictions on U: labelling U is the expensive (and, for APIs, paid) part.

Layout under the cache folder (a study's ``OUT/predictions``): ``<key>.safetensors`` (the labels) and
``<key>.json`` (the fingerprint of U, the label kind and names), keyed by the model fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_bytes, atomic_write_text
from fute_kit.errors import DataError
from fute_kit.examples import Examples

PREDICTION_KINDS: tuple[str, ...] = ("soft", "hard", "regression")


def check_predictions(model: str, predictions: Examples, inputs: Examples) -> Examples:
    """A model's outputs on U, or a DataError when they are not one label (of a known kind) per input."""
    if predictions.label_kind not in PREDICTION_KINDS or len(predictions) != len(inputs):
        raise DataError(
            f"model {model!r} returned {len(predictions)} {predictions.label_kind} labels for {len(inputs)} inputs"
        )
    return predictions


@attrs.frozen
class CachedPredictions:
    """What the cache holds for one key: the labels and which U they label."""

    inputs_fingerprint: str
    label_kind: str
    label_names: tuple[str, ...]
    labels: np.ndarray


class PredictionCache:
    """Soft labels (or scores) of one model on one U, keyed by the model fingerprint."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def read(self, key: str) -> CachedPredictions | None:
        """The cached entry as stored, whatever U it labels; None when absent."""
        meta_path = self.root / f"{key}.json"
        if not meta_path.exists():
            return None
        from safetensors.numpy import load_file

        meta = json.loads(meta_path.read_text())
        labels = load_file(str(self.root / f"{key}.safetensors"))["labels"]
        return CachedPredictions(meta["inputs"], meta["label_kind"], tuple(meta.get("label_names") or ()), labels)

    def get(self, key: str, inputs: Examples) -> Examples | None:
        """The cached predictions on exactly these inputs, or None."""
        cached = self.read(key)
        if cached is None or cached.inputs_fingerprint != inputs.fingerprint():
            return None
        return inputs.with_predictions(cached.labels, cached.label_kind, cached.label_names)

    def put(self, key: str, inputs: Examples, predictions: Examples) -> None:
        from safetensors.numpy import save

        assert predictions.labels is not None
        atomic_write_bytes(self.root / f"{key}.safetensors", save({"labels": np.ascontiguousarray(predictions.labels)}))
        meta = {
            "inputs": inputs.fingerprint(),
            "label_kind": predictions.label_kind,
            "label_names": list(predictions.label_names),
        }
        atomic_write_text(self.root / f"{key}.json", json.dumps(meta, indent=2))
