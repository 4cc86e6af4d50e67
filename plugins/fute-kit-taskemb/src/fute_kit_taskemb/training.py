"""Step 1 of taskemb: fine-tune a copy of the surrogate and a fresh head on the labelled examples.

Everything that is not data is fixed by the space's seed: the head's initial weights (from the seed
and the number of outputs), the data order (a permutation per (seed, epoch)) and dropout (the global
torch RNG is seeded inside ``torch.random.fork_rng``, so the caller's RNG state is left as it was).
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from fute_kit.errors import DataError
from fute_kit.examples import Examples

if TYPE_CHECKING:
    import torch

    from fute_kit_hf.surrogate import Surrogate, Tokenized

LossName = Literal["ce", "soft-ce", "bce", "mse"]


@attrs.frozen(eq=False)
class Targets:
    """The labels as tensors, with the loss that fits them.

    ``values``: (n,) int64 class indices (``ce``), (n, k) float probabilities (``soft-ce``, ``bce``) or
    (n,) float standardised regression targets (``mse``).
    """

    values: Any
    loss: LossName
    num_outputs: int

    def take(self, indices: np.ndarray) -> Any:
        import torch

        return self.values[torch.as_tensor(indices, device=self.values.device)]

    def classes(self) -> Any:
        """The class each example is labelled with (argmax of soft labels), or None for regression."""
        if self.loss == "ce":
            return self.values
        if self.loss in ("soft-ce", "bce"):
            return self.values.argmax(dim=-1)
        return None


def make_targets(examples: Examples, soft_loss: Literal["ce", "bce"], device: Any) -> Targets:
    """Validate the labels and turn them into tensors; errors name the dataset and the fix."""
    import torch

    where = f"taskemb: examples {examples.name!r}" if examples.name else "taskemb: examples"
    if not len(examples):
        raise DataError(f"{where} are empty: check the source's path, split or limit")
    if examples.label_kind == "none" or examples.labels is None:
        raise DataError(f"{where} have no labels: a DTE needs a labelled dataset, an MTE a model's predictions")
    labels = np.array(examples.labels)  # a writable copy: torch warns on read-only arrays
    if len(labels) != len(examples):
        raise DataError(f"{where}: {len(examples)} texts but {len(labels)} labels")
    if examples.label_kind == "hard":
        k = examples.num_classes
        if k < 2:
            raise DataError(f"{where}: hard labels need at least 2 classes, got label names {examples.label_names}")
        return Targets(torch.as_tensor(labels, dtype=torch.long, device=device), "ce", k)
    if examples.label_kind == "soft":
        if labels.ndim != 2 or labels.shape[1] < 2:
            raise DataError(f"{where}: soft labels must have shape (n, classes) with at least 2 classes")
        if examples.label_names and len(examples.label_names) != labels.shape[1]:
            raise DataError(
                f"{where}: soft labels have {labels.shape[1]} columns but {len(examples.label_names)} label names"
            )
        if not np.all(np.isfinite(labels)) or labels.min() < 0:
            raise DataError(f"{where}: soft labels must be finite probabilities")
        values = torch.as_tensor(labels / labels.sum(axis=1, keepdims=True), dtype=torch.float32, device=device)
        return Targets(values, "soft-ce" if soft_loss == "ce" else "bce", int(labels.shape[1]))
    if examples.label_kind == "regression":
        values = labels.astype(np.float64)
        if not np.all(np.isfinite(values)):
            raise DataError(f"{where}: regression targets contain NaN or infinity")
        # Standardised targets: the embedding does not depend on the unit of the score.
        std = values.std()
        values = (values - values.mean()) / (std if std > 0 else 1.0)
        return Targets(torch.as_tensor(values, dtype=torch.float32, device=device), "mse", 1)
    raise DataError(f"{where}: label kind {examples.label_kind!r} is not supported")


def per_example_loss(logits: torch.Tensor, target: torch.Tensor, loss: LossName) -> torch.Tensor:
    """The loss of each example, shape (b,)."""
    import torch.nn.functional as F

    if loss == "ce":
        return F.cross_entropy(logits, target, reduction="none")
    if loss == "soft-ce":
        return -(target * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(dim=-1)
    return (logits.squeeze(-1) - target) ** 2


def target_entropy(target: torch.Tensor, loss: LossName) -> torch.Tensor:
    """The smallest loss each example can reach: subtracted so soft-label losses can fall to zero."""
    import torch

    if loss == "soft-ce":
        return -(torch.special.xlogy(target, target)).sum(dim=-1)
    if loss == "bce":
        return -(torch.special.xlogy(target, target) + torch.special.xlogy(1 - target, 1 - target)).sum(dim=-1)
    return torch.zeros(target.shape[0], device=target.device)


@attrs.frozen
class TrainSettings:
    epochs: int
    learning_rate: float
    batch_size: int
    warmup_fraction: float
    weight_decay: float
    max_grad_norm: float
    early_stopping_fraction: float
    patience: int
    seed: int


@attrs.define(eq=False)
class Trained:
    """The fine-tuned copy of the surrogate, its head and what training did."""

    model: Any
    head: Any
    details: dict[str, Any]


def split_for_early_stopping(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) positions; held-out is empty when ``fraction`` is 0."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    held = max(1, round(n * fraction))
    if n - held < 1:
        raise DataError(f"early_stopping_fraction {fraction} leaves no training examples out of {n}")
    order = np.random.default_rng([int(seed), 7]).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])


def mean_excess_loss(
    surrogate: Surrogate,
    model: Any,
    head: Any,
    tokenized: Tokenized,
    targets: Targets,
    positions: np.ndarray,
    batch_size: int,
) -> float:
    """Eval-mode mean loss above the targets' own entropy on the given examples (no gradients)."""
    import torch

    was_training = model.training
    model.eval()
    head.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in surrogate.batches(tokenized.select(positions), batch_size, order="length"):
            target = targets.take(positions[batch.indices])
            logits = head(surrogate.forward_features(model, batch, output_hidden_states=False).pooled)
            excess = per_example_loss(logits, target, targets.loss) - target_entropy(target, targets.loss)
            total += float(excess.double().sum())
            count += batch.size
    model.train(was_training)
    head.train(was_training)
    return total / max(1, count)


def _rng_devices(device: Any) -> list[Any]:
    return [device] if getattr(device, "type", "cpu") == "cuda" else []


def train_surrogate(
    surrogate: Surrogate,
    tokenized: Tokenized,
    targets: Targets,
    settings: TrainSettings,
    progress: Any = None,
    probe_size: int = 64,
) -> Trained:
    """Fine-tune a copy of the surrogate and a fresh head; return them with the training details.

    AdamW (no weight decay on biases and norms), linear schedule with warm-up, gradient clipping,
    optional early stopping on a held-out split (the best epoch's weights are kept).
    """
    import torch

    from fute_kit_hf.surrogate import make_head

    started = time.perf_counter()
    device = surrogate.device
    model = surrogate.trainable_copy()
    head = make_head(surrogate.hidden_size, targets.num_outputs, settings.seed, device)
    train_pos, held_pos = split_for_early_stopping(len(tokenized), settings.early_stopping_fraction, settings.seed)
    train_tok = tokenized.select(train_pos)
    probe = train_pos[:probe_size]
    loss_before = mean_excess_loss(surrogate, model, head, tokenized, targets, probe, settings.batch_size)

    decay, no_decay = [], []
    for module in (model, head):
        for param in module.parameters():
            (decay if param.ndim >= 2 else no_decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )
    steps_per_epoch = math.ceil(len(train_pos) / settings.batch_size)
    total_steps = max(1, steps_per_epoch * settings.epochs)
    warmup = math.ceil(settings.warmup_fraction * total_steps)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step_losses: list[float] = []
    held_losses: list[float] = []
    best_state: dict[str, Any] | None = None
    best_held, bad_epochs, epochs_run = math.inf, 0, 0
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    head.train()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(settings.seed)  # dropout masks: fixed by the space's seed
        for epoch in range(settings.epochs):
            batches = surrogate.batches(
                train_tok, settings.batch_size, order="shuffle", seed=settings.seed, epoch=epoch
            )
            if progress is not None:
                batches = progress(batches, total=steps_per_epoch, desc=f"taskemb train {epoch + 1}/{settings.epochs}")
            for batch in batches:
                target = targets.take(train_pos[batch.indices])
                logits = head(surrogate.forward_features(model, batch, output_hidden_states=False).pooled)
                loss = per_example_loss(logits, target, targets.loss).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                excess = loss.detach() - target_entropy(target, targets.loss).mean()
                step_losses.append(float(excess))
            epochs_run = epoch + 1
            if len(held_pos):
                held = mean_excess_loss(surrogate, model, head, tokenized, targets, held_pos, settings.batch_size)
                held_losses.append(held)
                if held < best_held - 1e-6:
                    best_held, bad_epochs = held, 0
                    best_state = {
                        "model": copy.deepcopy(model.state_dict()),
                        "head": copy.deepcopy(head.state_dict()),
                        "epoch": epoch + 1,
                    }
                else:
                    bad_epochs += 1
                    if bad_epochs >= settings.patience:
                        break
    optimizer.zero_grad(set_to_none=True)  # free the last step's gradients
    if best_state is not None:
        model.load_state_dict(best_state["model"])
        head.load_state_dict(best_state["head"])
    loss_after = mean_excess_loss(surrogate, model, head, tokenized, targets, probe, settings.batch_size)
    window = max(1, min(5, len(step_losses) // 4))
    details: dict[str, Any] = {
        "train_examples": len(train_pos),
        "held_out_examples": len(held_pos),
        "epochs_run": epochs_run,
        "steps": len(step_losses),
        "loss": targets.loss,
        "train_loss_first": round(float(np.mean(step_losses[:window])), 6) if step_losses else None,
        "train_loss_last": round(float(np.mean(step_losses[-window:])), 6) if step_losses else None,
        "probe_loss_before": round(loss_before, 6),
        "probe_loss_after": round(loss_after, 6),
        "probe_examples": len(probe),
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    if held_losses:
        details["held_out_losses"] = [round(v, 6) for v in held_losses]
        details["best_epoch"] = best_state["epoch"] if best_state is not None else None
    return Trained(model, head, details)


# A fine-tuning that did not lower the probe loss by this share, or whose agreement with its labels stays
# within this margin of the majority rate, did not learn: the embedding then describes its initialisation.
LOSS_DROP = 0.02
LEARNING_MARGIN = 0.02


def majority_rate(targets: Any) -> float | None:
    """Share of the most frequent label class (argmax of soft labels); None for regression."""
    classes = targets.classes()
    if classes is None:
        return None
    counts = np.bincount(classes.cpu().numpy(), minlength=targets.num_outputs)
    return round(float(counts.max() / max(1, counts.sum())), 6)


def learning_warnings(details: dict[str, Any], majority: float | None, what: str = "surrogate") -> list[str]:
    """Warnings when training did not learn; ``what`` names the trained part ("surrogate", "tuned parameters")."""
    warnings = []
    before, after = details.get("probe_loss_before"), details.get("probe_loss_after")
    if before is not None and after is not None and not after < before * (1 - LOSS_DROP):
        warnings.append(
            f"{what} did not learn: probe loss {before:.4g} -> {after:.4g} (less than {LOSS_DROP:.0%} lower); "
            "raise learning_rate or epochs (or the labels carry no information, e.g. a constant prior)"
        )
    agreement = details.get("agreement")
    if majority is not None and agreement is not None and majority < 1.0 and agreement <= majority + LEARNING_MARGIN:
        warnings.append(
            f"{what} did not learn beyond the majority class: agreement with its labels {agreement:.3f} vs "
            f"majority rate {majority:.3f}; raise learning_rate or epochs"
        )
    return warnings
