"""Fine-tune a small sequence classifier on labelled examples: the "small fine-tuned models" of a study.

The result is a normal transformers folder (loadable by the ``hf`` model source) with ``fute_finetune.json``
beside the weights: the fingerprint of data and settings, and the accuracy on the evaluation examples.
Asking again with the same data and settings returns the folder without training (a cache).

Defaults were chosen on the builtin sets with all-MiniLM-L6-v2 (800 training examples each, 2 shared CPU cores):
2 epochs at lr 2e-4 (batch 32, 50 steps, linear decay after 6% warm-up) reach test accuracies of 0.965
(bbc-topic), 0.95 (rt-subjectivity), 0.755 (rt-sentiment) and 0.655 (convention-party) for 160 to 350 CPU-seconds
each; a third epoch did not help rt-sentiment (0.765). lr 5e-5 for ~50 steps is known not to learn here.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from fute_kit.plugin import DataError, Examples, FuteError, RunContext, atomic_folder
from fute_kit_hf.precision import autocast, check_precision, fused_adamw, resolve_precision

FINGERPRINT_FILE = "fute_finetune.json"


def finetune_fingerprint(examples: Examples, base: str, settings: dict[str, Any]) -> str:
    payload = json.dumps({"data": examples.fingerprint(), "base": base, **settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def read_finetune_info(folder: str | Path) -> dict[str, Any] | None:
    """The ``fute_finetune.json`` of a fine-tuned folder (None when absent or unreadable)."""
    path = Path(folder) / FINGERPRINT_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def finetune_classifier(
    examples: Examples,
    out_dir: str | Path,
    base: str = "minilm",
    *,
    eval_examples: Examples | None = None,
    epochs: int = 2,
    lr: float = 2e-4,
    batch_size: int = 32,
    max_length: int = 128,
    weight_decay: float = 0.01,
    warmup: float = 0.06,
    seed: int = 0,
    fresh_head: bool = False,
    precision: str = "fp32",
    device: str = "auto",
    context: RunContext | None = None,
) -> str:
    """Fine-tune ``base`` (alias, folder or hub id) on hard labels (or regression targets); returns the folder.

    Writes to a temporary folder beside ``out_dir`` and renames it into place, so an interrupted run never
    leaves a half-written model. An existing ``out_dir`` with the same fingerprint is returned as it is.
    ``fresh_head``: draw a new classification head even when ``base`` is a fine-tuned classifier with the
    same number of classes (intermediate-task transfer: keep the encoder, not the old task's head).
    ``precision``: ``"fp32"`` (the reference), ``"bf16"`` or ``"auto"`` (:mod:`fute_kit_hf.precision`).
    """
    context = context or RunContext(show_progress=False)
    settings = finetune_settings(
        examples,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        weight_decay=weight_decay,
        warmup=warmup,
        seed=seed,
        fresh_head=fresh_head,
        precision=precision,
    )
    out = Path(out_dir).expanduser()
    fingerprint = finetune_fingerprint(examples, base, settings)
    if out.exists():
        info = read_finetune_info(out)
        if info is not None and info.get("fingerprint") == fingerprint:
            context.logger.info("fine-tuned model %s is up to date (fingerprint %s)", out, fingerprint)
            return str(out)
        if info is None and any(out.iterdir()):
            raise FuteError(f"{out} exists and is not a folder written by finetune_classifier: choose another --out")

    model, tokenizer, metrics = _train_and_score(examples, base, eval_examples, settings, device, context, out.name)
    info = {
        "fingerprint": fingerprint,
        "base": base,
        "data": examples.fingerprint(),
        "name": examples.name,
        "label_names": list(examples.label_names),
        "settings": settings,
        "metrics": metrics,
    }
    with atomic_folder(out) as tmp:  # an older fine-tuning of ours at ``out`` is replaced
        _save_quietly(model, tokenizer, tmp)
        (tmp / FINGERPRINT_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return str(out)


DEFAULT_SETTINGS: dict[str, Any] = {
    "epochs": 2,
    "lr": 2e-4,
    "batch_size": 32,
    "max_length": 128,
    "weight_decay": 0.01,
    "warmup": 0.06,
    "seed": 0,
    "fresh_head": False,
    "precision": "fp32",
}


def finetune_and_score(
    examples: Examples,
    eval_examples: Examples,
    base: str = "minilm",
    *,
    device: str = "auto",
    context: RunContext | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """Fine-tune like :func:`finetune_classifier` (same settings) and return only the metrics on ``eval_examples``.

    Nothing is written: for runs whose model is not worth keeping (a transfer matrix's hundreds of target runs).
    """
    unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
    if unknown:
        raise FuteError(f"unknown fine-tuning setting(s) {unknown}; known: {sorted(DEFAULT_SETTINGS)}")
    context = context or RunContext(show_progress=False)
    checked = finetune_settings(examples, **{**DEFAULT_SETTINGS, **settings})
    eval_examples.require_nonempty()
    _, _, metrics = _train_and_score(examples, base, eval_examples, checked, device, context, examples.name)
    return metrics


def _save_quietly(model: Any, tokenizer: Any, folder: Path) -> None:
    """save_pretrained without its "Writing model shards" bar (one per source in a transfer matrix's log)."""
    from fute_kit_hf.models import quiet_transformers

    with quiet_transformers(warnings=True):
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


def finetune_settings(examples: Examples, **settings: Any) -> dict[str, Any]:
    """The checked settings of a fine-tuning (what its fingerprint covers); refuses unusable data or values."""
    if examples.label_kind not in ("hard", "regression"):
        raise DataError(
            f"fine-tuning needs hard labels or regression targets; examples {examples.name!r} have "
            f"{examples.label_kind!r} labels"
        )
    examples.require_nonempty()
    if examples.label_kind == "hard" and len(examples.label_names) < 2:
        raise DataError(
            f"fine-tuning needs at least two classes; examples {examples.name!r} have {examples.label_names}"
        )
    if settings["epochs"] < 1 or settings["batch_size"] < 1 or settings["max_length"] < 2 or settings["lr"] <= 0:
        shown = ", ".join(f"{k}={settings[k]}" for k in ("epochs", "batch_size", "lr", "max_length"))
        raise FuteError(f"fine-tuning settings out of range: {shown}")
    check_precision(settings.get("precision", "fp32"))
    # Absent at their reference values: fingerprints (and transfer run keys) of earlier fine-tunings stay valid.
    if not settings.get("fresh_head"):
        settings.pop("fresh_head", None)
    if settings.get("precision") == "fp32":
        settings.pop("precision")
    return settings


def _train_and_score(
    examples: Examples,
    base: str,
    eval_examples: Examples | None,
    settings: dict[str, Any],
    device: str,
    context: RunContext,
    where: str,
) -> tuple[Any, Any, dict[str, Any]]:
    from fute_kit_hf.device import resolve_device
    from fute_kit_hf.models import classify, local_or_hub

    base_path = local_or_hub(base, context.cache_dir)
    torch_device = resolve_device(device)
    started = time.time()
    model, tokenizer = _train(examples, base_path, settings, torch_device, context)
    metrics: dict[str, Any] = {"train_seconds": round(time.time() - started, 1), "train_examples": len(examples)}
    if eval_examples is not None and len(eval_examples):
        predictions = classify(
            model,
            tokenizer,
            eval_examples.unlabeled(),
            context,
            batch_size=64,
            max_length=settings["max_length"],
            where=f"fine-tuned {where}",
        )
        metrics.update(_evaluate(predictions, eval_examples))
    context.logger.info(
        "fine-tuned %s on %d examples in %.0f s (%s): %s",
        base,
        len(examples),
        metrics["train_seconds"],
        torch_device,
        {k: v for k, v in metrics.items() if k.startswith("eval")},
    )
    return model, tokenizer, metrics


def macro_f1(predicted: Any, gold: Any) -> float:
    """Unweighted mean F1 over the classes that occur in ``gold`` or ``predicted`` (as scikit-learn's)."""
    import numpy as np

    predicted, gold = np.asarray(predicted), np.asarray(gold)
    classes = np.union1d(predicted, gold)
    tp = np.array([np.sum((predicted == c) & (gold == c)) for c in classes], dtype=float)
    denominators = np.array([np.sum(predicted == c) + np.sum(gold == c) for c in classes], dtype=float)
    return float(np.mean(2 * tp / np.maximum(denominators, 1)))


def _evaluate(predictions: Examples, gold: Examples) -> dict[str, float]:
    import numpy as np

    if gold.label_kind == "hard":
        chosen = predictions.labels.argmax(axis=1)
        return {
            "eval_accuracy": round(float(np.mean(chosen == gold.labels)), 4),
            "eval_macro_f1": round(macro_f1(chosen, gold.labels), 4),
            "eval_examples": len(gold),
        }
    if gold.label_kind == "regression":
        error = predictions.labels - gold.labels
        return {"eval_rmse": round(float(np.sqrt(np.mean(error**2))), 4), "eval_examples": len(gold)}
    return {}


def _train(examples: Examples, base_path: str, settings: dict[str, Any], device: Any, context: RunContext) -> Any:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from fute_kit_hf.models import _prepare_padding, quiet_transformers

    regression = examples.label_kind == "regression"
    names = list(examples.label_names) if not regression else ["score"]
    torch.manual_seed(settings["seed"])  # the new head's initial weights
    with quiet_transformers():  # "newly initialised head" is the point of fine-tuning, not a warning
        model = AutoModelForSequenceClassification.from_pretrained(
            base_path,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            problem_type="regression" if regression else "single_label_classification",
            ignore_mismatched_sizes=True,
            dtype=torch.float32,  # a half-precision checkpoint must not be fine-tuned in half precision
        )
    if settings.get("fresh_head"):
        _fresh_head(model, settings["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    _prepare_padding(model, tokenizer)
    model.to(device).train()
    pairs = list(examples.text_pairs) if examples.text_pairs is not None else None
    encoded = tokenizer(list(examples.texts), pairs, truncation=True, max_length=settings["max_length"])
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    labels = torch.tensor(examples.labels, dtype=torch.float32 if regression else torch.long)

    batch_size, epochs = settings["batch_size"], settings["epochs"]
    steps = epochs * int(np.ceil(len(examples) / batch_size))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": settings["weight_decay"],
        },
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    choice = settings.get("precision", "fp32")
    precision = resolve_precision(choice, device)
    optimizer = torch.optim.AdamW(groups, lr=settings["lr"], fused=fused_adamw(choice, device) or None)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(settings["warmup"] * steps), steps)
    generator = torch.Generator().manual_seed(settings["seed"])
    bar = iter(context.progress(range(steps), total=steps, desc=f"fine-tuning on {examples.name or 'examples'}"))
    lengths = [len(ids) for ids in encoded["input_ids"]]
    for _ in range(epochs):
        for idx in _length_grouped_batches(lengths, batch_size, generator):
            batch = tokenizer.pad({k: [encoded[k][i] for i in idx] for k in keys}, padding=True, return_tensors="pt")
            batch = batch.to(device)
            with autocast(precision, device):
                loss = model(**batch, labels=labels[idx].to(device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            next(bar, None)
    for _ in bar:  # close the progress bar
        pass
    return model.eval(), tokenizer


def _fresh_head(model: Any, seed: int) -> None:
    """Redraw every weight outside the encoder (the classification head) as a new head is drawn.

    Loading a fine-tuned classifier with the same number of classes keeps its old head; transfer wants the
    encoder only. Linear layers get N(0, initializer_range) weights and zero biases (the BERT-family
    initialisation), norms ones and zeros, all from ``seed``: a baseline and a transfer run with the same seed
    start from the same head.
    """
    import torch

    prefix = model.base_model_prefix
    std = float(getattr(model.config, "initializer_range", 0.02))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if not name or name == prefix or name.startswith(prefix + "."):
                continue
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, torch.nn.LayerNorm) and module.elementwise_affine:
                module.weight.fill_(1.0)
                module.bias.zero_()


def _length_grouped_batches(lengths: list[int], batch_size: int, generator: Any) -> list[list[int]]:
    """Shuffled batches of similar lengths (:func:`fute_kit_hf.surrogate.length_grouped`): less padding."""
    import torch

    from fute_kit_hf.surrogate import length_grouped

    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = length_grouped(order, lengths, batch_size, lambda k: torch.randperm(k, generator=generator).tolist())
    return [batch.tolist() for batch in batches]
