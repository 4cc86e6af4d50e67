"""A complete third-party model adapter: any scikit-learn text classifier becomes a model source.

Any model whose outputs can be read belongs in the space: here a pickled scikit-learn pipeline
(for example TF-IDF + logistic regression) labels U with ``predict_proba``, and fute_kit turns
those soft labels into a model task embedding comparable with every dataset.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, RunContext, hookimpl, option


@attrs.frozen
class SklearnTextClassifier:
    """A pickled scikit-learn text classifier with ``predict_proba`` (TF-IDF + logistic regression...)."""

    name = "sklearn"

    path: str = option(help="a pickle file of a fitted estimator or pipeline that accepts raw texts")
    _model: Any = attrs.field(default=None, repr=False, eq=False, alias="_model")

    def load_model(self) -> Any:
        if self._model is not None:
            return self._model
        file = Path(self.path)
        if not file.exists():
            raise DataError(f"sklearn model file {file} does not exist: pickle a fitted estimator there")
        with file.open("rb") as handle:
            return pickle.load(handle)  # only load pickles you trust

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        model = self.load_model()
        if not hasattr(model, "predict_proba"):
            raise DataError(f"{type(model).__name__} has no predict_proba: soft labels need probabilities")
        probs = np.asarray(model.predict_proba(list(inputs.texts)), dtype=np.float64)
        names = tuple(str(c) for c in model.classes_)
        return inputs.with_predictions(probs, "soft", names)


@hookimpl
def register_model_sources(register: Any) -> None:
    register(SklearnTextClassifier)


@hookimpl
def adapt_model(obj: Any) -> Any:
    """Accept an already fitted scikit-learn classifier object directly (``fute_kit.embed_model``)."""
    if hasattr(obj, "predict_proba") and hasattr(obj, "classes_"):
        return SklearnTextClassifier(path="<in memory>", _model=obj)
    return None
