"""A cache of model predictions on U: labelling U is the expensive (and, for APIs, paid) part."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fute_kit.atomic import atomic_write_bytes, atomic_write_text
from fute_kit.examples import Examples


class PredictionCache:
    """Soft labels (or scores) of one model on one U, keyed by the model fingerprint."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, key: str, inputs: Examples) -> Examples | None:
        meta_path = self.root / f"{key}.json"
        if not meta_path.exists():
            return None
        from safetensors.numpy import load_file

        meta = json.loads(meta_path.read_text())
        if meta["inputs"] != inputs.fingerprint():
            return None
        labels = load_file(str(self.root / f"{key}.safetensors"))["labels"]
        return inputs.with_predictions(labels, meta["label_kind"], meta["label_names"])

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
