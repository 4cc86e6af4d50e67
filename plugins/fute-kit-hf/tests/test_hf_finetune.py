"""Fine-tuning a classifier: it learns, writes a folder the ``hf`` source loads, and caches by fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fute_kit.errors import DataError, FuteError
from fute_kit.examples import Examples
from fute_kit_hf.finetune import FINGERPRINT_FILE, finetune_classifier, read_finetune_info
from fute_kit_hf.models import HFClassifier

FRUIT = ["apple", "pear", "plum", "cherry", "peach"]
TOOLS = ["hammer", "wrench", "saw", "drill", "chisel"]
FILLER = ["the", "a", "my", "one", "this", "old", "red", "big", "small", "new"]


def _separable(n: int, seed: int) -> Examples:
    """Texts that name a fruit or a tool among filler words: learnable by any encoder in a few steps."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "fruit" if i % 2 else "tool"
        words = list(rng.choice(FILLER, size=int(rng.integers(2, 8))))
        words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(FRUIT if label == "fruit" else TOOLS)))
        texts.append(" ".join(words))
        labels.append(label)
    return Examples.from_hard_labels(texts, labels, name="fruit-or-tool")


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    base = tiny_model_dir("bert")
    out = tmp_path_factory.mktemp("finetuned") / "fruit"
    folder = finetune_classifier(
        _separable(128, 0), out, base, eval_examples=_separable(60, 1), epochs=6, lr=5e-3, batch_size=16
    )
    return folder, base


@pytest.mark.slow
def test_finetuned_folder_learns_and_loads(trained: tuple[str, str], hf_context: Any) -> None:
    folder, _ = trained
    info = read_finetune_info(folder)
    assert info is not None and info["label_names"] == ["fruit", "tool"]
    assert info["metrics"]["eval_accuracy"] >= 0.9, info["metrics"]
    held_out = _separable(40, 7)
    predictions = HFClassifier(path=folder).predict(held_out.unlabeled(), hf_context)
    assert predictions.label_names == ("fruit", "tool")
    assert np.mean(predictions.labels.argmax(axis=1) == held_out.labels) >= 0.9


@pytest.mark.slow
def test_same_data_and_settings_reuse_the_folder(trained: tuple[str, str]) -> None:
    folder, base = trained
    stamp = (Path(folder) / FINGERPRINT_FILE).stat().st_mtime_ns
    again = finetune_classifier(_separable(128, 0), folder, base, epochs=6, lr=5e-3, batch_size=16)
    assert again == folder and (Path(folder) / FINGERPRINT_FILE).stat().st_mtime_ns == stamp


def test_changed_settings_retrain_in_place(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    out = tmp_path / "model"
    finetune_classifier(_separable(32, 0), out, base, epochs=1, batch_size=16)
    first = read_finetune_info(out)["fingerprint"]
    finetune_classifier(_separable(32, 0), out, base, epochs=1, batch_size=16, seed=1)
    assert read_finetune_info(out)["fingerprint"] != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folders left behind


@pytest.mark.slow
def test_bf16_autocast_learns_and_is_its_own_fingerprint(tiny_model_dir: Any, tmp_path: Path) -> None:
    from fute_kit_hf.precision import native_bf16

    base = tiny_model_dir("bert")
    fp32 = finetune_classifier(_separable(128, 0), tmp_path / "fp32", base, epochs=6, lr=5e-3, batch_size=16)
    # The reference precision stays out of the settings: fingerprints (and transfer run keys) from before it exist.
    assert "precision" not in read_finetune_info(fp32)["settings"]
    auto = finetune_classifier(
        _separable(128, 0),
        tmp_path / "auto",
        base,
        eval_examples=_separable(60, 1),
        epochs=6,
        lr=5e-3,
        batch_size=16,
        precision="auto",
    )
    info = read_finetune_info(auto)
    assert info["settings"]["precision"] == "auto"
    assert info["fingerprint"] != read_finetune_info(fp32)["fingerprint"]
    assert info["metrics"]["eval_accuracy"] >= 0.9, info["metrics"]  # bf16 where native (this CPU), else fp32
    if not native_bf16("cpu"):
        with pytest.raises(FuteError, match="no native bfloat16"):
            finetune_classifier(_separable(32, 0), tmp_path / "bf16", base, epochs=1, precision="bf16")
    with pytest.raises(FuteError, match="precision must be one of"):
        finetune_classifier(_separable(32, 0), tmp_path / "bad", base, epochs=1, precision="fp16")


def test_regression_targets(tiny_model_dir: Any, tmp_path: Path, hf_context: Any) -> None:
    data = _separable(32, 0)
    targets = Examples(texts=data.texts, labels=data.labels.astype(float) * 2.0, label_kind="regression")
    folder = finetune_classifier(targets, tmp_path / "reg", tiny_model_dir("bert"), eval_examples=targets, epochs=1)
    assert "eval_rmse" in read_finetune_info(folder)["metrics"]
    predictions = HFClassifier(path=folder).predict(targets.unlabeled(), hf_context)
    assert predictions.label_kind == "regression" and predictions.labels.shape == (32,)


def test_refusals(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    soft = _separable(4, 0).with_predictions(np.full((4, 2), 0.5), "soft", ("a", "b"))
    with pytest.raises(DataError, match="hard labels or regression"):
        finetune_classifier(soft, tmp_path / "x", base)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FuteError, match="choose another --out"):
        finetune_classifier(_separable(8, 0), foreign, base, epochs=1)


def test_finetune_command(tiny_model_dir: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from fute_kit.cli import cli

    data = _separable(48, 0)
    rows = [
        {"text": t, "label": data.label_names[y], "split": "train" if i < 32 else "test"}
        for i, (t, y) in enumerate(zip(data.texts, data.labels, strict=True))
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "cli-model"
    args = [
        "finetune",
        "--source",
        "files",
        "--set",
        f"path={path}",
        "--set",
        "label=label",
        "--set",
        "split=train",
        "--eval",
        "split=test",
        "--base",
        tiny_model_dir("bert"),
        "--epochs",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "accuracy on 16 evaluation examples" in result.output
    assert read_finetune_info(out)["metrics"]["eval_examples"] == 16
    bad = CliRunner().invoke(cli, ["finetune", "files:x", "--out", str(out)])
    assert bad.exit_code == 2 and "builtin" in bad.output


def test_half_precision_checkpoint_is_tuned_and_read_in_float32(
    tiny_model_dir: Any, tmp_path: Path, hf_context: Any
) -> None:
    """transformers loads a checkpoint in its stored dtype by default; AdamW in float16 diverges to NaN."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    half = tmp_path / "half"
    base = tiny_model_dir("bert")
    AutoModel.from_pretrained(base).to(torch.float16).save_pretrained(half)
    AutoTokenizer.from_pretrained(base).save_pretrained(half)
    folder = finetune_classifier(_separable(32, 0), tmp_path / "tuned", str(half), epochs=1, batch_size=16)
    from fute_kit_hf.models import load_classifier

    model, _ = load_classifier(folder, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    predictions = HFClassifier(path=folder).predict(_separable(8, 3).unlabeled(), hf_context)
    assert np.isfinite(predictions.labels).all()


def test_macro_f1_by_hand() -> None:
    from fute_kit_hf.finetune import macro_f1

    # class 0: tp 1, fp 1, fn 1 -> 2/4; class 1: tp 1, fp 1, fn 0 -> 2/3; class 2: tp 0, fn 1 -> 0
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 2]) == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert macro_f1([1, 1], [1, 1]) == 1.0


def test_fresh_head_keeps_the_encoder_and_redraws_the_head(tiny_model_dir: Any, tmp_path: Path) -> None:
    """Transfer starts from a fine-tuned encoder with a new head: same seed, same head, whatever the start."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from fute_kit_hf.finetune import _fresh_head

    source = tiny_model_dir("bert", head="classifier", num_labels=2)
    tuned = AutoModelForSequenceClassification.from_pretrained(source, num_labels=2)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir("bert"), num_labels=2)
    old_head = tuned.classifier.weight.detach().clone()
    encoder = {k: v.clone() for k, v in tuned.bert.state_dict().items()}
    _fresh_head(tuned, seed=3)
    _fresh_head(base, seed=3)
    assert not torch.equal(tuned.classifier.weight, old_head)
    assert torch.equal(tuned.classifier.weight, base.classifier.weight)
    assert torch.count_nonzero(tuned.classifier.bias) == 0
    assert all(torch.equal(v, tuned.bert.state_dict()[k]) for k, v in encoder.items())


def test_finetune_and_score_from_a_checkpoint(trained: tuple[str, str]) -> None:
    from fute_kit_hf.finetune import finetune_and_score

    folder, _ = trained
    # the same classes again: with a fresh head the old head is not reused, yet the encoder still knows the task
    metrics = finetune_and_score(
        _separable(32, 3), _separable(40, 4), folder, epochs=1, lr=5e-3, batch_size=16, fresh_head=True
    )
    assert metrics["eval_examples"] == 40 and 0.0 <= metrics["eval_macro_f1"] <= 1.0
    assert metrics["eval_accuracy"] >= 0.8, metrics
