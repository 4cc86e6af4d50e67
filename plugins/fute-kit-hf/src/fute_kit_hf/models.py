"""The ``hf`` model source: a transformers sequence-classification (or regression) model as a black box.

Its outputs on the inputs are the soft labels of a model task embedding: ``softmax(logits)`` with the class
names of ``config.id2label``, or the predicted score for a regression head (``num_labels == 1`` or
``problem_type == "regression"``). Inputs are sorted by length and padded per batch, then put back in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, FuteError, RunContext, option


class ModelLoadError(FuteError):
    """A model folder or hub id that cannot be loaded."""


# Loaded (model, tokenizer) pairs, one per (path, device) and process: jobs of one study share them.
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


@contextlib.contextmanager
def quiet_transformers(*, warnings: bool = False) -> Iterator[None]:
    """transformers without its progress bars and (unless ``warnings``) its warnings, restored afterwards.

    For loads whose "newly initialised head" report is the point (fine-tuning, a random-head control) and saves
    whose "Writing model shards" bar would be one per run in a transfer matrix's log.
    """
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    if not warnings:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def local_or_hub(path: str, cache_dir: str | Path | None = None) -> str:
    """A folder, alias or hub id → what ``from_pretrained`` loads; a folder that does not exist is an error."""
    from fute_kit_hf.assets import resolve_model

    resolved = resolve_model(path, cache_dir)
    candidate = Path(resolved).expanduser()
    if candidate.exists():
        if not (candidate / "config.json").is_file():
            raise ModelLoadError(
                f"model folder {str(candidate)!r} has no config.json: is it a transformers model folder?"
            )
        return str(candidate.resolve())
    # A hub id is "name" or "org/name"; anything else that is not on disk is a mistyped folder.
    if resolved.count("/") > 1 or resolved.endswith("/") or "\\" in resolved:
        raise ModelLoadError(f"model folder {resolved!r} does not exist: check the path")
    return resolved


def load_classifier(path: str, device: str = "auto", cache_dir: str | Path | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a sequence-classification model, loaded once per process and device."""
    import torch

    from fute_kit_hf.device import resolve_device

    resolved = local_or_hub(path, cache_dir)
    torch_device = resolve_device(device)
    key = (resolved, str(torch_device))
    if key not in _LOADED:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(resolved)
            # float32 whatever the checkpoint's dtype: soft labels then agree across devices and checkpoints.
            model = AutoModelForSequenceClassification.from_pretrained(resolved, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load {path!r} as a sequence-classification model: {exc}. "
                "Give a local folder, or a hub id (needs the internet unless it is cached)"
            ) from exc
        _prepare_padding(model, tokenizer)
        _LOADED[key] = (model.to(torch_device).eval(), tokenizer)
    return _LOADED[key]


def _prepare_padding(model: Any, tokenizer: Any) -> None:
    # Decoder classifiers (GPT-2, Llama) ship without a pad token; they read the last non-pad token,
    # so the end-of-sequence token serves as padding.
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ModelLoadError("the tokenizer has neither a pad token nor an end-of-sequence token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id


def is_regression(config: Any) -> bool:
    return getattr(config, "problem_type", None) == "regression" or int(getattr(config, "num_labels", 2)) == 1


def label_names(config: Any) -> tuple[str, ...]:
    id2label = getattr(config, "id2label", None) or {}
    count = int(getattr(config, "num_labels", len(id2label)))
    return tuple(str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(count))


def tokenize_sorted(
    tokenizer: Any, inputs: Examples, max_length: int, *, add_special_tokens: bool = True
) -> tuple[dict[str, list[Any]], np.ndarray, int]:
    """Token ids of every input (truncated to ``max_length``), the order by decreasing length, and how
    many inputs were longer than ``max_length`` (and so truncated)."""
    texts, pairs = list(inputs.texts), None if inputs.text_pairs is None else list(inputs.text_pairs)
    # Tokenizing to max_length + 1 tells which inputs were longer than max_length without the cost and
    # warnings of encoding long documents in full.
    probe = tokenizer(texts, pairs, truncation=True, max_length=max_length + 1, add_special_tokens=add_special_tokens)
    lengths = np.array([len(ids) for ids in probe["input_ids"]])
    truncated = int((lengths > max_length).sum())
    encoded = tokenizer(texts, pairs, truncation=True, max_length=max_length, add_special_tokens=add_special_tokens)
    # Longest first: a batch that does not fit in memory fails at once, not at the end.
    order = np.argsort(-np.minimum(lengths, max_length), kind="stable")
    return dict(encoded), order, truncated


def batches(encoded: dict[str, list[Any]], order: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, dict]]:
    """Index arrays with the features of those inputs, ``batch_size`` at a time, in the given order."""
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out.append((idx, {k: [encoded[k][i] for i in idx] for k in keys}))
    return out


def classify(
    model: Any,
    tokenizer: Any,
    inputs: Examples,
    context: RunContext,
    *,
    batch_size: int,
    max_length: int,
    where: str,
) -> Examples:
    """Soft labels (or regression scores) of a loaded sequence-classification model on the inputs."""
    import torch

    if len(inputs) == 0:
        raise DataError(f"{where}: no inputs to label")
    device = next(model.parameters()).device
    # A max_length beyond the model's position table would fail inside the model: cap it there.
    max_length = min(max_length, int(getattr(model.config, "max_position_embeddings", None) or max_length))
    tokenizer_limit = int(getattr(tokenizer, "model_max_length", max_length) or max_length)
    max_length = min(max_length, tokenizer_limit) if tokenizer_limit < 100_000 else max_length
    encoded, order, truncated = tokenize_sorted(tokenizer, inputs, max_length)
    if truncated:
        context.record(
            "truncated_inputs", {"model": where, "count": truncated, "of": len(inputs), "max_length": max_length}
        )
        context.logger.info("%s: %d of %d inputs truncated to %d tokens", where, truncated, len(inputs), max_length)
    regression = is_regression(model.config)
    width = 1 if regression else int(model.config.num_labels)
    outputs = np.zeros((len(inputs), width), dtype=np.float64)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            chunks = batches(encoded, order, batch_size)
            for idx, features in context.progress(chunks, total=len(chunks), desc=f"labelling with {where}"):
                batch = tokenizer.pad(features, padding=True, return_tensors="pt").to(device)
                logits = model(**batch).logits.float()
                values = logits if regression else torch.softmax(logits, dim=-1)
                outputs[idx] = values.cpu().numpy().astype(np.float64)
    finally:
        model.train(was_training)
    if not np.isfinite(outputs).all():
        bad = int((~np.isfinite(outputs)).any(axis=1).sum())
        raise FuteError(
            f"{where}: the model's outputs are not finite (NaN or inf) for {bad} of {len(inputs)} inputs; "
            "its weights are broken (e.g. trained in half precision): retrain or reload it in float32"
        )
    if regression:
        return inputs.with_predictions(outputs[:, 0], "regression", label_names(model.config)[:1] or ("score",))
    outputs /= outputs.sum(axis=1, keepdims=True)  # exact rows after float32 softmax
    return inputs.with_predictions(outputs, "soft", label_names(model.config))


@attrs.frozen
class HFClassifier:
    """A transformers sequence-classification or regression model (folder or hub id): soft labels = softmax(logits)."""

    name = "hf"

    path: str = option(help="model folder or hub id of a sequence-classification (or regression) model")
    batch_size: int = option(32, help="inputs per forward pass", validator=attrs.validators.gt(0))
    max_length: int = option(128, help="longer inputs are truncated (and counted)", validator=attrs.validators.gt(0))
    device: str = option("auto", help="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:1'...")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        model, tokenizer = load_classifier(self.path, self.device, context.cache_dir)
        return classify(
            model,
            tokenizer,
            inputs,
            context,
            batch_size=self.batch_size,
            max_length=self.max_length,
            where=f"hf model {self.path!r}",
        )


# -- already loaded objects (the adapt_model hook) --------------------------------------------------
@attrs.frozen
class LoadedHFClassifier:
    """A model source around an already loaded transformers classifier and its tokenizer."""

    model: Any = attrs.field(repr=False)
    tokenizer: Any = attrs.field(repr=False)
    name: str = "hf-model"
    batch_size: int = 32
    max_length: int = 128

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        _prepare_padding(self.model, self.tokenizer)
        return classify(
            self.model,
            self.tokenizer,
            inputs,
            context,
            batch_size=self.batch_size,
            max_length=self.max_length,
            where=f"loaded model {self.name!r}",
        )


def _is_transformers_object(obj: Any) -> bool:
    return any(cls.__module__.split(".")[0] == "transformers" for cls in type(obj).__mro__)


def _is_classifier(model: Any) -> bool:
    return _is_transformers_object(model) and type(model).__name__.endswith("ForSequenceClassification")


def adapt_loaded_model(obj: Any) -> LoadedHFClassifier | None:
    """A model source for ``(model, tokenizer)``, a text-classification pipeline, or a classifier whose
    ``name_or_path`` names its tokenizer; None for anything else (another plugin may know it)."""
    model, tokenizer = None, None
    if isinstance(obj, tuple) and len(obj) == 2 and _is_classifier(obj[0]):
        model, tokenizer = obj
    elif _is_transformers_object(obj) and _is_classifier(getattr(obj, "model", None)):
        model, tokenizer = obj.model, getattr(obj, "tokenizer", None)  # a pipeline
    elif _is_classifier(obj):
        model = obj
    if model is None:
        return None
    source = str(getattr(model, "name_or_path", "") or "")
    if tokenizer is None:
        if not source:
            raise ModelLoadError(
                f"{type(model).__name__} has no name_or_path to find its tokenizer: pass (model, tokenizer) instead"
            )
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
    name = Path(source).name if source else type(model).__name__
    return LoadedHFClassifier(model=model, tokenizer=tokenizer, name=name or "hf-model")
