"""The happy path against a real OpenAI-compatible server (llama.cpp via xllamacpp, SmolLM2-135M-Instruct)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit.testing import check_model_source
from fute_kit_openai.source import OpenAIModel

pytestmark = pytest.mark.server


def make(server: Any, sentiment: dict[str, Any], cache_dir: Path, **options: Any) -> OpenAIModel:
    options = {"prompt": sentiment["prompt"], "labels": sentiment["labels"], **options}
    return OpenAIModel(model=server.model, base_url=server.base_url, cache_path=str(cache_dir / "r.sqlite"), **options)


def texts_and_truth(sentiment: dict[str, Any]) -> tuple[Examples, np.ndarray]:
    texts = sentiment["positive"] + sentiment["negative"]
    truth = np.array([0] * len(sentiment["positive"]) + [1] * len(sentiment["negative"]))
    return Examples(texts=texts), truth


def ranked_right(labels: np.ndarray, truth: np.ndarray) -> float:
    """Share of (positive, negative) text pairs where the positive text gets the higher P(positive).

    SmolLM2-135M leans positive (its argmax is "positive" for some negative texts), but it ranks well.
    """
    pos, neg = labels[truth == 0, 0], labels[truth == 1, 0]
    return float((pos[:, None] > neg[None, :]).mean())


def test_chat_logprobs_soft_labels_and_rerun_from_cache(
    llama_server: Any, sentiment: dict[str, Any], cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inputs, truth = texts_and_truth(sentiment)
    model = make(llama_server, sentiment, cache_dir)
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    with caplog.at_level(logging.INFO, logger="fute_kit"):
        predictions = check_model_source(model, inputs, context)
    assert predictions.label_kind == "soft" and predictions.label_names == ("positive", "negative")
    labels = np.asarray(predictions.labels)
    np.testing.assert_allclose(labels.sum(axis=1), 1.0)
    assert ranked_right(labels, truth) >= 0.9
    assert len(np.unique(labels.round(3), axis=0)) > 2  # real soft labels, not one-hot or uniform
    first = context.details["accounting"]
    assert first["requests"] == len(inputs) and first["answers"] == len(inputs) and first["cache_hits"] == 0
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    assert context.details["openai"]["mode"] == "logprobs" and context.details["openai"]["unmatched_share"] < 0.5
    assert any("requests" in r.getMessage() and "cache hits" in r.getMessage() for r in caplog.records)

    again = RunContext(cache_dir=cache_dir, show_progress=False)
    rerun = model.predict(inputs, again)
    assert again.details["accounting"]["requests"] == 0 and again.details["accounting"]["cache_hits"] == len(inputs)
    np.testing.assert_array_equal(np.asarray(rerun.labels), labels)
    # More concurrency, same requests: still answered from the cache.
    wider = RunContext(cache_dir=cache_dir, show_progress=False)
    attrs.evolve(model, concurrency=8).predict(inputs, wider)
    assert wider.details["accounting"]["requests"] == 0

    # Batch calibration divides out the model's lean towards "positive": same answers (no request), the
    # ranking kept, the argmax at least as often right, and the bias it removed in the provenance.
    calibrated_context = RunContext(cache_dir=cache_dir, show_progress=False)
    calibrated = np.asarray(attrs.evolve(model, calibrate="batch").predict(inputs, calibrated_context).labels)
    assert calibrated_context.details["accounting"]["requests"] == 0
    assert calibrated_context.details["calibration"]["method"] == "batch"
    np.testing.assert_allclose(calibrated_context.details["calibration"]["mean_label"], labels.mean(axis=0), atol=1e-4)
    assert ranked_right(calibrated, truth) == ranked_right(labels, truth)
    assert np.mean(calibrated.argmax(axis=1) == truth) >= np.mean(labels.argmax(axis=1) == truth)


def test_completions_logprobs_read_from_raw_json(llama_server: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    # llama.cpp sends completions log-probabilities in the chat shape, which the openai client cannot parse.
    inputs, truth = texts_and_truth(sentiment)
    model = make(
        llama_server,
        sentiment,
        cache_dir,
        endpoint="completions",
        prompt="Review: {text}\nSentiment (positive or negative):",
    )
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    labels = np.asarray(model.predict(inputs, context).labels)
    assert context.details["openai"]["unmatched_share"] < 0.5
    assert ranked_right(labels, truth) >= 0.75


def test_parse_and_sample_modes(llama_server: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    inputs = Examples(texts=[sentiment["positive"][0], sentiment["negative"][0]])
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    parsed = np.asarray(make(llama_server, sentiment, cache_dir, mode="parse").predict(inputs, context).labels)
    assert set(np.unique(parsed)) <= {0.0, 0.5, 1.0}  # one-hot, or uniform when nothing matched
    assert context.details["openai"]["mode"] == "parse"
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    sampled = make(llama_server, sentiment, cache_dir, mode="sample", samples=3, concurrency=3).predict(inputs, context)
    assert context.details["accounting"]["requests"] == 6 and context.details["openai"]["answers"] == 6
    assert np.all(np.isin(np.asarray(sampled.labels).round(4), np.round([0, 1 / 3, 0.5, 2 / 3, 1], 4)))


def test_pairs_and_few_shot(llama_server: Any, cache_dir: Path) -> None:
    model = OpenAIModel(
        model=llama_server.model,
        base_url=llama_server.base_url,
        cache_path=str(cache_dir / "r.sqlite"),
        prompt="Sentence 1: {text_a}\nSentence 2: {text_b}\nDo they mean the same? Answer yes or no.",
        labels={"same": ["yes"], "different": ["no"]},
        few_shot=[{"text_a": "It is cold.", "text_b": "It is chilly.", "label": "same"}],
    )
    inputs = Examples(texts=["The cat sleeps.", "I love tea."], text_pairs=["The cat is asleep.", "Cars are fast."])
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    predictions = model.predict(inputs, context)
    assert np.asarray(predictions.labels).shape == (2, 2) and predictions.text_pairs == inputs.text_pairs


def test_api_key_never_stored_or_logged(
    llama_server: Any,
    sentiment: dict[str, Any],
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "sk-fute-test-secret-4242"
    monkeypatch.setenv("OPENAI_API_KEY", secret)  # the local server ignores it, but it is sent
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    model = make(llama_server, sentiment, cache_dir)
    with caplog.at_level(logging.DEBUG):
        model.predict(Examples(texts=["Nice."]), context)
    stored = b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert secret not in repr(context.details) and secret not in caplog.text and secret not in repr(model)


def test_cache_command(llama_server: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    from fute_kit_openai.cli import cache

    model = make(llama_server, sentiment, cache_dir)
    inputs = Examples(texts=["Nice.", "Awful."])
    for _ in range(2):
        model.predict(inputs, RunContext(cache_dir=cache_dir, show_progress=False))
    path = str(cache_dir / "r.sqlite")
    runner = CliRunner()
    result = runner.invoke(cache, ["info", "--path", path])
    assert result.exit_code == 0, result.output
    assert "answers:    2" in result.output and "hit rate 50.0%" in result.output
    result = runner.invoke(cache, ["clear", "--path", path, "--yes"])
    assert result.exit_code == 0 and "removed 2" in result.output
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    model.predict(inputs, context)
    assert context.details["accounting"]["requests"] == 2
