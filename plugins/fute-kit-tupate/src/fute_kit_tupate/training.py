"""Training the tuned parameters and a head with the surrogate frozen.

Same conventions as ``taskemb``'s fine-tuning (labels and losses from ``fute_kit_hf.targets``): the head's
initial weights come from (seed, number of outputs), the data order from a permutation per (seed, epoch),
dropout from the global torch RNG seeded inside ``torch.random.fork_rng`` (the caller's RNG state is left
as it was). Losses are reported as the excess over the targets' own entropy, so soft labels can reach 0.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import torch

from fute_kit_hf.targets import Targets, per_example_loss, split_for_early_stopping, target_entropy

if TYPE_CHECKING:
    from fute_kit_hf.surrogate import Surrogate, Tokenized
    from fute_kit_tupate.tuners import Tuned


@attrs.frozen
class Settings:
    epochs: int
    learning_rate: float
    head_learning_rate: float
    batch_size: int
    warmup_fraction: float
    weight_decay: float
    max_grad_norm: float
    early_stopping_fraction: float
    patience: int
    seed: int
    dropout: bool = False  # dropout in the frozen surrogate while tuning
    head_init: str = "random"  # or "probe": fitted on frozen features first (fute_kit_hf.probe)


@attrs.frozen
class Evaluation:
    loss: float  # mean excess loss
    agreement: float | None  # share of examples whose argmax matches the label's class (None: regression)


def evaluate(
    surrogate: Surrogate,
    tuned: Tuned,
    head: torch.nn.Module,
    tokenized: Tokenized,
    targets: Targets,
    positions: np.ndarray,
    batch_size: int,
) -> Evaluation:
    """Eval-mode (no dropout) mean excess loss and agreement on the given examples, without gradients."""
    was_training = tuned.model.training
    tuned.model.eval()
    head.eval()
    total, agree, count = 0.0, 0, 0
    classes = targets.classes()
    with torch.inference_mode():
        for batch in surrogate.batches(tokenized.select(positions), batch_size, order="length"):
            rows = positions[batch.indices]
            target = targets.take(rows)
            logits = head(tuned.pooled(surrogate, batch))
            excess = per_example_loss(logits, target, targets.loss) - target_entropy(target, targets.loss)
            total += float(excess.double().sum())
            if classes is not None:
                wanted = classes[torch.as_tensor(rows, device=classes.device)]
                agree += int((logits.argmax(dim=-1) == wanted).sum())
            count += batch.size
    tuned.model.train(was_training)
    head.train(was_training)
    agreement = round(agree / max(1, count), 6) if classes is not None else None
    return Evaluation(total / max(1, count), agreement)


def _rng_devices(device: Any) -> list[Any]:
    return [device] if getattr(device, "type", "cpu") == "cuda" else []


def train(
    surrogate: Surrogate,
    tuned: Tuned,
    head: torch.nn.Module,
    tokenized: Tokenized,
    targets: Targets,
    settings: Settings,
    progress: Any = None,
    probe_size: int = 256,
) -> dict[str, Any]:
    """Train ``tuned.params`` and ``head`` in place; return what training did (for the provenance).

    AdamW (weight decay on the tuned parameters and the head's weight, as the reference schedule),
    linear schedule with warm-up, gradient clipping, optional early stopping on a held-out split (the
    best epoch's parameters are kept).
    """
    started = time.perf_counter()
    train_pos, held_pos = split_for_early_stopping(len(tokenized), settings.early_stopping_fraction, settings.seed)
    train_tok = tokenized.select(train_pos)
    probe = train_pos[:probe_size]
    before = evaluate(surrogate, tuned, head, tokenized, targets, probe, settings.batch_size)
    probe_details: dict[str, Any] = {}
    if settings.head_init == "probe":
        from fute_kit_hf.probe import fit_probe_head

        tuned.model.eval()
        probe_details = fit_probe_head(
            surrogate,
            head,
            tokenized,
            targets,
            train_pos,
            settings.batch_size,
            lambda batch: tuned.pooled(surrogate, batch),
        )

    tuned_params = list(tuned.params.values())
    optimizer = torch.optim.AdamW(
        [
            {"params": tuned_params, "lr": settings.learning_rate, "weight_decay": settings.weight_decay},
            {"params": [head.weight], "lr": settings.head_learning_rate, "weight_decay": settings.weight_decay},
            {"params": [head.bias], "lr": settings.head_learning_rate, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = math.ceil(len(train_pos) / settings.batch_size)
    total_steps = max(1, steps_per_epoch * settings.epochs)
    warmup = math.ceil(settings.warmup_fraction * total_steps)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    clipped = [*tuned_params, *head.parameters()]
    step_losses: list[float] = []
    held_losses: list[float] = []
    best: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], int] | None = None
    best_held, bad_epochs, epochs_run = math.inf, 0, 0
    tuned.model.train(settings.dropout)  # the frozen surrogate: dropout only when asked for
    head.train()
    with torch.random.fork_rng(devices=_rng_devices(surrogate.device)):
        torch.manual_seed(settings.seed)  # dropout masks: fixed by the space's seed
        for epoch in range(settings.epochs):
            batches = surrogate.batches(
                train_tok, settings.batch_size, order="shuffle", seed=settings.seed, epoch=epoch
            )
            if progress is not None:
                batches = progress(batches, total=steps_per_epoch, desc=f"tupate train {epoch + 1}/{settings.epochs}")
            for batch in batches:
                target = targets.take(train_pos[batch.indices])
                logits = head(tuned.pooled(surrogate, batch))
                loss = per_example_loss(logits, target, targets.loss).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(clipped, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step_losses.append(float(loss.detach() - target_entropy(target, targets.loss).mean()))
            epochs_run = epoch + 1
            if len(held_pos):
                held = evaluate(surrogate, tuned, head, tokenized, targets, held_pos, settings.batch_size).loss
                held_losses.append(held)
                if held < best_held - 1e-6:
                    best_held, bad_epochs = held, 0
                    best = (tuned.snapshot(), {k: v.clone() for k, v in head.state_dict().items()}, epoch + 1)
                else:
                    bad_epochs += 1
                    if bad_epochs >= settings.patience:
                        break
    if best is not None:
        tuned.restore(best[0])
        head.load_state_dict(best[1])
    after = evaluate(surrogate, tuned, head, tokenized, targets, probe, settings.batch_size)
    final = evaluate(surrogate, tuned, head, tokenized, targets, np.arange(len(tokenized)), settings.batch_size)
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
        "probe_loss_before": round(before.loss, 6),
        "probe_loss_after": round(after.loss, 6),
        "probe_examples": len(probe),
        "final_loss": round(final.loss, 6),
        "train_seconds": round(time.perf_counter() - started, 3),
    }
    if final.agreement is not None:
        details["agreement_before"] = before.agreement
        details["agreement"] = final.agreement
    if held_losses:
        details["held_out_losses"] = [round(v, 6) for v in held_losses]
        details["best_epoch"] = best[2] if best is not None else None
    return details
