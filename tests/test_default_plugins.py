"""The plugins built into the core: ``inline`` (dataset source), ``constant`` (control model), ``local``."""

from __future__ import annotations

import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.errors import OptionsError
from fute_kit.examples import Examples
from fute_kit.registry import Registry
from fute_kit.testing import check_model_source, make_registry


def test_constant_model_is_a_visible_builtin_plugin_of_its_own() -> None:
    registry: Registry = make_registry()
    assert {"inline", "constant", "local"} <= set(registry.host.infos)
    spec = registry.get("model_source", "constant")
    assert spec.plugin == "constant" and "label prior" in spec.description


def test_constant_model_answers_the_normalised_prior_for_every_input() -> None:
    model = make_registry().build("model_source", "constant", {"probabilities": {"positive": 3.0, "negative": 1.0}})
    inputs = Examples(texts=["a", "b", "c"])
    predictions = model.predict(inputs, RunContext(show_progress=False))
    assert predictions.label_kind == "soft" and predictions.label_names == ("positive", "negative")
    np.testing.assert_allclose(predictions.labels, [[0.75, 0.25]] * 3)
    check_model_source(model, inputs)
    with pytest.raises(OptionsError, match="probabilities"):
        make_registry().build("model_source", "constant", {"probabilities": "uniform"})
