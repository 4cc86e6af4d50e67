"""The ``hf-prompted`` model source: label words, rendering, left-padded batches, and SmolLM2 itself."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest

from fute_kit.errors import DataError, OptionsError
from fute_kit.examples import Examples
from fute_kit.prompts import calibrate
from fute_kit.testing import check_model_source
from fute_kit_hf.prompted import HFPrompted, PromptError, label_token_ids, prompt_accuracy, word_variants

SENTIMENT = {"positive": ["positive"], "negative": ["negative"]}
PROMPT = "What is the sentiment of this review: {text}"
TEXTS = [
    "A wonderful, moving film. I loved every minute of it.",
    "Terrible acting and a boring, pointless plot. A waste of time.",
    "One of the best movies of the year, brilliant!",
    "I hated it. Awful.",
    "The cast is superb and the story delightful.",
    "Dull, ugly and far too long.",
    "great",
    "bad",
]
GOLD = ["positive", "negative", "positive", "negative", "positive", "negative", "positive", "negative"]


def test_word_variants_are_documented_forms() -> None:
    assert word_variants("positive") == ["positive", " positive", "Positive", " Positive"]
    assert word_variants("NLI") == ["NLI", " NLI", "nli", " nli"]


def test_label_tokens_and_collisions(smollm2_tokenizer_dir: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    tokens = label_token_ids(tokenizer, SENTIMENT)
    assert [len(t) for t in tokens] == [4, 4]  # four distinct first tokens per word in this vocabulary
    assert not set(tokens[0]) & set(tokens[1])
    with pytest.raises(PromptError, match=r"'great' \(class 'a'\) and 'great' \(class 'b'\)"):
        label_token_ids(tokenizer, {"a": ["great"], "b": ["bad", "great"]})


def test_prompt_options_are_validated(fute_registry: Any) -> None:
    import fute_kit_hf

    registry = fute_registry(fute_kit_hf)
    build = lambda **o: registry.build("model_source", "hf-prompted", o)  # noqa: E731
    with pytest.raises(OptionsError, match=r"\{text\}"):
        build(prompt="no placeholder", labels=SENTIMENT)
    with pytest.raises(OptionsError, match="at least two classes"):
        build(prompt=PROMPT, labels={"positive": ["good"]})
    with pytest.raises(OptionsError, match="few_shot"):
        build(prompt=PROMPT, labels=SENTIMENT, few_shot=[{"text": "x", "label": "neutral"}])
    assert build(prompt="{text_a} / {text_b}", labels=SENTIMENT).is_pair_prompt


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_decoder_code_path_left_padding(family: str, tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir(family, head="lm")
    inputs = Examples(texts=TEXTS)
    source = HFPrompted(prompt=PROMPT, labels=SENTIMENT, path=folder, batch_size=3, system="Be brief.")
    predictions = check_model_source(source, inputs, hf_context)
    assert predictions.label_kind == "soft" and predictions.label_names == ("positive", "negative")
    np.testing.assert_allclose(predictions.labels.sum(axis=1), 1.0, atol=1e-9)
    # Left padding with explicit positions: a batch gives each prompt the scores it gets alone.
    alone = HFPrompted(prompt=PROMPT, labels=SENTIMENT, path=folder, batch_size=1, system="Be brief.")
    np.testing.assert_allclose(predictions.labels, alone.predict(inputs, hf_context).labels, atol=1e-5)
    record = hf_context.details["off_label_top1"]
    assert record["of"] == len(TEXTS) and 0.0 <= record["share"] <= 1.0
    calibrated = attrs.evolve(source, calibrate="batch").predict(inputs, hf_context).labels
    np.testing.assert_allclose(calibrated, calibrate(predictions.labels, "batch")[0], atol=1e-6)
    assert hf_context.details["calibration"]["method"] == "batch"


def test_encoder_decoder_code_path(tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir("t5", head="lm")
    source = HFPrompted(prompt="{text_a} ? {text_b}", labels={"yes": ["yes"], "no": ["no"]}, path=folder)
    inputs = Examples(texts=TEXTS[:4], text_pairs=TEXTS[4:])
    predictions = check_model_source(source, inputs, hf_context)
    assert predictions.labels.shape == (4, 2)
    with pytest.raises(DataError, match="expects pairs"):
        source.predict(Examples(texts=TEXTS), hf_context)


def test_rendering_few_shot_prefix_and_truncation(
    smollm2_tokenizer_dir: str, tiny_model_dir: Any, hf_context: Any
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    source = HFPrompted(
        prompt=PROMPT,
        labels=SENTIMENT,
        few_shot=[{"text": "Loved it", "label": "positive"}],
        answer_prefix="The sentiment is",
        system="You rate reviews.",
    )
    chat = source.render(tokenizer, "Meh.", None, use_chat=True)
    assert chat.index("You rate reviews.") < chat.index("Loved it") < chat.index("The sentiment is positive")
    assert chat.endswith("<|im_start|>assistant\nThe sentiment is")
    plain = source.render(tokenizer, "Meh.", None, use_chat=False)
    assert plain == (
        "You rate reviews.\n\nWhat is the sentiment of this review: Loved it\nThe sentiment is positive\n\n"
        "What is the sentiment of this review: Meh.\nThe sentiment is"
    )
    # A long input is cut so that the instruction and the answer cue survive.
    long_text = "word " * 400
    folder = tiny_model_dir("llama", head="lm")
    short = HFPrompted(prompt=PROMPT, labels=SENTIMENT, path=folder, max_length=64, answer_prefix="Answer:")
    prompts, truncated = short._render_all(tokenizer, Examples(texts=[long_text, "fine"]), use_chat=True)
    assert truncated == 1 and prompts[0].endswith("assistant\nAnswer:")
    assert len(tokenizer(prompts[0], add_special_tokens=False)["input_ids"]) <= 64
    short.predict(Examples(texts=[long_text, "fine"]), hf_context)
    assert hf_context.details["truncated_inputs"]["count"] == 1
    with pytest.raises(PromptError, match="raise max_length"):
        HFPrompted(prompt=PROMPT, labels=SENTIMENT, path=folder, max_length=8).predict(
            Examples(texts=["x"]), hf_context
        )


def test_prompt_accuracy() -> None:
    inputs = Examples.from_hard_labels(["a", "b", "c"], ["pos", "neg", "pos"])
    soft = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    predictions = inputs.unlabeled().with_predictions(soft, "soft", ("pos", "neg"))
    assert prompt_accuracy(predictions, inputs) == pytest.approx(2 / 3)


@pytest.mark.slow
def test_smollm2_reads_obvious_sentiment(smollm2_dir: str, hf_context: Any) -> None:
    source = HFPrompted(
        prompt=PROMPT, labels=SENTIMENT, path=smollm2_dir, answer_prefix="The sentiment of this review is"
    )
    inputs = Examples.from_hard_labels(TEXTS, GOLD, label_names=["positive", "negative"])
    predictions = check_model_source(source, inputs, hf_context)
    assert prompt_accuracy(predictions, inputs) >= 7 / 8
    assert hf_context.details["off_label_top1"]["share"] <= 0.25
    # Without the answer cue this small model starts with "The ...": the off-label share says so.
    HFPrompted(prompt=PROMPT, labels=SENTIMENT, path=smollm2_dir).predict(inputs.unlabeled(), hf_context)
    assert hf_context.details["off_label_top1"]["share"] >= 0.5


def test_colliding_label_words_fail_before_inference(tiny_model_dir: Any, hf_context: Any) -> None:
    source = HFPrompted(prompt=PROMPT, labels={"a": ["Great"], "b": ["great"]}, path=tiny_model_dir("llama", head="lm"))
    with pytest.raises(PromptError, match="both start with the token"):
        source.predict(Examples(texts=TEXTS), hf_context)
    assert "off_label_top1" not in hf_context.details
