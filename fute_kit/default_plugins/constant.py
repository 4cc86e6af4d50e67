"""The ``constant`` model source: a control model that answers every input with the same probabilities.

Give it a dataset's label prior (``probabilities = {positive = 0.6, negative = 0.4}``) and its MTE is what an
embedding of that label distribution alone looks like. A real model's MTE should be closer to its own task's
dataset than its prior-only control is; if the control retrieves the dataset as well, the embedding encodes
only the number and balance of classes, not the task. ``fute demo`` adds one per builtin dataset.
"""

from __future__ import annotations

from typing import Any

import attrs

from fute_kit.components import RunContext
from fute_kit.errors import DataError
from fute_kit.examples import Examples
from fute_kit.hookspecs import hookimpl
from fute_kit.options import option


@attrs.frozen
class ConstantModel:
    """A control model: the same class probabilities (a label prior) for every input."""

    name = "constant"

    probabilities: dict[str, float] = option(help="probability of each class, e.g. {positive = 0.6, negative = 0.4}")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        import numpy as np

        names = tuple(self.probabilities)
        probs = np.array([self.probabilities[n] for n in names], dtype=np.float64)
        if not names or probs.min() < 0 or probs.sum() <= 0:
            raise DataError("constant model: probabilities must be non-negative and not all zero")
        probs = probs / probs.sum()
        return inputs.with_predictions(np.tile(probs, (len(inputs), 1)), "soft", names)


@hookimpl
def register_model_sources(register: Any) -> None:
    register(ConstantModel)
