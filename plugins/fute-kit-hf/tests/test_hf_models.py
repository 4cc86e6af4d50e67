"""The ``hf`` model source on tiny random classifiers, and adapting already loaded models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fute_kit.errors import FuteError
from fute_kit.examples import Examples
from fute_kit.testing import check_model_source
from fute_kit_hf.models import HFClassifier, LoadedHFClassifier, adapt_loaded_model

TEXTS = [
    "short",
    "a much longer sentence that has many more tokens than the others in this list of inputs",
    "medium length text here",
    "x",
    "another fairly long input sentence, with punctuation; and clauses",
    "two words",
    "the end",
]


def _inputs(pairs: bool = False) -> Examples:
    return Examples(texts=TEXTS, text_pairs=[t[::-1] for t in TEXTS] if pairs else None)


def test_soft_labels_sum_to_one_and_keep_order(tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir("bert", head="classifier", num_labels=3)
    model = HFClassifier(path=folder, batch_size=2)
    predictions = check_model_source(model, _inputs(), hf_context)
    assert predictions.label_kind == "soft"
    assert predictions.label_names == ("class_0", "class_1", "class_2")
    assert predictions.labels.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(predictions.labels.sum(axis=1), 1.0, atol=1e-9)
    # Sorting by length and batching must not change which row belongs to which text.
    one_by_one = np.vstack(
        [HFClassifier(path=folder, batch_size=1).predict(Examples(texts=[t]), hf_context).labels for t in TEXTS]
    )
    np.testing.assert_allclose(predictions.labels, one_by_one, atol=1e-5)
    assert len(set(np.round(predictions.labels[:, 0], 6))) > 1  # random weights still tell inputs apart


def test_regression_head_gives_scores(tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir("bert", head="classifier", num_labels=1)
    predictions = HFClassifier(path=folder).predict(_inputs(), hf_context)
    assert predictions.label_kind == "regression"
    assert predictions.labels.shape == (len(TEXTS),)


def test_pairs_and_truncation_are_counted(tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir("bert", head="classifier", num_labels=2)
    predictions = HFClassifier(path=folder, max_length=8).predict(_inputs(pairs=True), hf_context)
    assert predictions.is_pairs and predictions.labels.shape == (len(TEXTS), 2)
    record = hf_context.details["truncated_inputs"]
    assert record["max_length"] == 8 and 0 < record["count"] < len(TEXTS)
    single = HFClassifier(path=folder, max_length=8).predict(_inputs(), hf_context)
    assert not np.allclose(single.labels, predictions.labels)  # the second text is read


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_decoder_classifiers_pad_themselves(family: str, tiny_model_dir: Any, hf_context: Any) -> None:
    folder = tiny_model_dir(family, head="classifier", num_labels=2)
    batched = HFClassifier(path=folder, batch_size=4).predict(_inputs(), hf_context)
    single = HFClassifier(path=folder, batch_size=1).predict(_inputs(), hf_context)
    np.testing.assert_allclose(batched.labels, single.labels, atol=1e-5)


def test_missing_folder_is_named(hf_context: Any, tmp_path: Any) -> None:
    with pytest.raises(FuteError, match="does-not-exist"):
        HFClassifier(path=str(tmp_path / "does-not-exist")).predict(_inputs(), hf_context)
    with pytest.raises(FuteError, match=r"config\.json"):
        HFClassifier(path=str(tmp_path)).predict(_inputs(), hf_context)


def test_options_are_validated(fute_registry: Any) -> None:
    import fute_kit_hf
    from fute_kit.errors import OptionsError

    registry = fute_registry(fute_kit_hf)
    with pytest.raises(OptionsError, match="batch_size"):
        registry.build("model_source", "hf", {"path": "x", "batch_size": 0})
    with pytest.raises(OptionsError, match="path"):
        registry.build("model_source", "hf", {})


def test_adapt_loaded_objects(tiny_model_dir: Any, hf_context: Any) -> None:
    import transformers

    folder = tiny_model_dir("bert", head="classifier", num_labels=2)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    expected = HFClassifier(path=folder).predict(_inputs(), hf_context).labels
    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer)
    for obj in [(model, tokenizer), model, pipe]:
        source = adapt_loaded_model(obj)
        assert isinstance(source, LoadedHFClassifier), type(obj)
        np.testing.assert_allclose(source.predict(_inputs(), hf_context).labels, expected, atol=1e-5)
    assert adapt_loaded_model("a string") is None
    assert adapt_loaded_model((1, 2)) is None
    base = transformers.AutoModel.from_pretrained(tiny_model_dir("bert"))
    assert adapt_loaded_model(base) is None  # not a classifier: another plugin may know it


def test_embed_model_api_adapts_a_loaded_pair(tiny_model_dir: Any, fute_registry: Any, hf_context: Any) -> None:
    import transformers

    import fute_kit_hf

    registry = fute_registry(fute_kit_hf)
    folder = tiny_model_dir("bert", head="classifier", num_labels=2)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    source = registry.adapt_model((model, tokenizer))
    assert source.predict(_inputs(), hf_context).label_kind == "soft"
