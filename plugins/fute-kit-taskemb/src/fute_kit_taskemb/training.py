"""Step 1 of taskemb: fine-tune a copy of the surrogate and a fresh head on the labelled examples.

Everything that is not data is fixed by the space's seed: the head's initial weights (from the seed
and the number of outputs), the data order (a permutation per (seed, epoch)) and dropout (the global
torch RNG is seeded inside ``torch.random.fork_rng``, so the caller's RNG state is left as it was).
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from fute_kit_hf.targets import Targets, per_example_loss, split_for_early_stopping, target_entropy

if TYPE_CHECKING:
    from fute_kit_hf.surrogate import Surrogate, Tokenized


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
    head_init: str = "random"  # or "probe": fitted on frozen features first (fute_kit_hf.probe)


@attrs.define(eq=False)
class Trained:
    """The fine-tuned copy of the surrogate, its head and what training did."""

    model: Any
    head: Any
    details: dict[str, Any]


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
    probe_details: dict[str, Any] = {}
    if settings.head_init == "probe":
        from fute_kit_hf.probe import fit_probe_head

        model.eval()
        probe_details = fit_probe_head(
            surrogate,
            head,
            tokenized,
            targets,
            train_pos,
            settings.batch_size * 2,
            lambda batch: surrogate.forward_features(model, batch, output_hidden_states=False).pooled,
        )

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
        "head_init": settings.head_init,
        **probe_details,
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
