"""Prompt conventions: prompts listed in one entry become models LLM/PROMPT; batch calibration of their soft labels."""

from __future__ import annotations

import numpy as np
import pytest

from fute_kit.prompts import calibrate, expand_prompts, is_prompt, llm_of


def test_batch_calibration_divides_out_the_lean_towards_one_label() -> None:
    # A model that says "positive" to everything, more or less sure: the order of the texts is what it knows.
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    calibrated, bias = calibrate(probs, "batch")
    np.testing.assert_allclose(bias, [0.8375, 0.1625])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert list(calibrated.argmax(axis=1)) == [0, 0, 1, 1]  # was all 0
    assert list(np.argsort(calibrated[:, 0])) == list(np.argsort(probs[:, 0]))  # the ranking is kept
    # Already balanced labels are left as they are.
    balanced = np.array([[0.9, 0.1], [0.1, 0.9]])
    np.testing.assert_allclose(calibrate(balanced, "batch")[0], balanced)


def test_none_is_the_identity_and_unused_classes_stay_zero() -> None:
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    same, bias = calibrate(probs, "none")
    np.testing.assert_array_equal(same, probs)
    np.testing.assert_allclose(bias, [0.5, 0.5, 0.0])
    calibrated, _ = calibrate(probs, "batch")
    assert np.all(calibrated[:, 2] == 0) and np.all(np.isfinite(calibrated))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="unknown calibration 'temperature'"):
        calibrate(probs, "temperature")


def test_prompts_of_one_entry_become_models_named_llm_slash_prompt() -> None:
    entry = {"name": "llm", "source": "openai", "prompts": {"a": "Say {text}", "b": {"prompt": "Do {text}", "n": 2}}}
    expanded = expand_prompts(entry)
    assert [e["name"] for e in expanded] == ["llm/a", "llm/b"]
    assert expanded[0]["prompt"] == "Say {text}" and expanded[1] == {
        "name": "llm/b",
        "source": "openai",
        "prompt": "Do {text}",
        "n": 2,
    }
    assert [is_prompt(f"model:{e['name']}") for e in expanded] == [True, True]
    assert llm_of("model:llm/b") == "llm" and not is_prompt("dataset:llm/b")
    assert expand_prompts({"name": "plain", "source": "hf"}) == [{"name": "plain", "source": "hf"}]
