"""The training loop every method shares: a head (and what the method tunes) on labelled examples.

A method says *what* learns through a :class:`Trainable` (taskemb: a whole copy of the surrogate,
:class:`FineTuned`; tupate: the tuned parameters of a frozen copy); this module says *how*: AdamW,
a linear schedule with warm-up, gradient clipping, optional early stopping on a held-out split (the
best epoch's state is kept) and an optional linear-probe start for the head (:mod:`fute_kit_hf.probe`).

Everything that is not data is fixed by the space's seed: the head's initial weights (from the seed
and the number of outputs, :func:`fute_kit_hf.surrogate.make_head`), the data order (a permutation per
(seed, epoch)) and dropout (the global torch RNG is seeded inside ``torch.random.fork_rng``, so the
caller's RNG state is left as it was). Losses are reported as the excess over the targets' own
entropy, so soft labels can reach 0.

``precision`` (:mod:`fute_kit_hf.precision`) says how the forward passes compute: ``"fp32"`` is the reference
path (float32, the per-parameter AdamW loop); ``"bf16"`` runs them under bfloat16 autocast with float32 master
weights and the fused AdamW kernel; ``"auto"`` takes ``"bf16"`` where the device has native bfloat16. A
method chooses its default (:func:`training_option`). The setting ``stop_loss`` ends training once the mean
excess loss of the last steps is below it (the targets are already fit, or there is nothing to learn, as in a
contrast's null task).
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any, Literal, Protocol

import attrs
import numpy as np

from fute_kit.plugin import option
from fute_kit_hf.precision import PRECISIONS, autocast, fused_adamw, resolve_precision
from fute_kit_hf.targets import (
    HEAD_INITS,
    SOFT_LOSSES,
    Targets,
    per_example_loss,
    split_for_early_stopping,
    target_entropy,
)

if TYPE_CHECKING:
    import torch

    from fute_kit_hf.surrogate import Batch, Surrogate, Tokenized


@attrs.frozen
class Settings:
    """How to train; a method fills it from its options."""

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
    dropout: bool = True  # the model's dropout while training (evaluation passes never use it)
    probe_size: int = 64  # training examples whose loss before/after training is reported
    head_fit_batch_size: int | None = None  # batch size of the probe head's feature pass (None: batch_size)
    final_pass: bool = False  # measure loss and agreement on every example after training
    label: str = "surrogate"  # the progress bar's name
    precision: str = "fp32"  # "auto", "fp32" or "bf16" (fute_kit_hf.precision), resolved on the device by train
    fused_optimizer: bool | None = None  # the fused AdamW kernel; None: unless precision is "fp32"
    stop_loss: float | None = None  # stop once the mean excess loss of the last STOP_WINDOW steps is below it
    batch_order: str = "shuffle"  # or "grouped": shuffled batches of similar lengths (Surrogate.batches)


POSITIVE = attrs.validators.gt(0)
NON_NEGATIVE = attrs.validators.ge(0)
FRACTION = [attrs.validators.ge(0), attrs.validators.lt(1)]  # [0, 1)
BATCH_ORDERS = ("shuffle", "grouped")
STOP_WINDOW = 5  # steps whose mean excess loss stop_loss compares


@attrs.frozen
class TrainingOptions:
    """The options of a method that trains with this loop: a method class subclasses it and adds its own.

    The defaults suit fine-tuning a small surrogate on a CPU; a method gives an option another default by
    declaring it again with :func:`training_option`.
    """

    epochs: int = option(3, help="training epochs (fewer with early stopping)", validator=POSITIVE)
    learning_rate: float = option(2e-4, help="AdamW learning rate", validator=NON_NEGATIVE)
    batch_size: int = option(16, help="training batch size", validator=POSITIVE)
    max_length: int = option(128, help="tokens per input; longer inputs are truncated and counted", validator=POSITIVE)
    warmup_fraction: float = option(0.06, help="fraction of steps with linear warm-up", validator=FRACTION)
    weight_decay: float = option(0.01, help="AdamW weight decay", validator=NON_NEGATIVE)
    max_grad_norm: float = option(1.0, help="gradient clipping norm", validator=NON_NEGATIVE)
    early_stopping_fraction: float = option(
        0.0,
        help="hold out this fraction to stop early on its loss and keep the best epoch (0 = train all epochs)",
        validator=FRACTION,
    )
    patience: int = option(2, help="epochs without held-out improvement before stopping", validator=POSITIVE)
    soft_loss: Literal["ce", "bce", "hard"] = option(
        "ce",
        help="how soft labels (a model's outputs) are learned: soft-target cross-entropy, 'bce' (multi-label, as the "
        "reference code) or 'hard' (experimental: cross-entropy on their argmax)",
        validator=attrs.validators.in_(SOFT_LOSSES),
    )
    head_init: Literal["random", "probe"] = option(
        "random",
        help="the head's start: 'random' (N(0, 0.02) from the seed and the number of classes) or 'probe' "
        "(experimental: fitted first as a linear probe on the frozen features, fute_kit_hf.probe)",
        validator=attrs.validators.in_(HEAD_INITS),
    )

    precision: Literal["auto", "fp32", "bf16"] = option(
        "fp32",
        help="'auto': bfloat16 autocast and the fused AdamW where the device has native bfloat16 (else float32); "
        "'fp32': float32 and the reference AdamW loop, as before; 'bf16': bfloat16, or fail where not native",
        validator=attrs.validators.in_(PRECISIONS),
    )
    batch_order: Literal["shuffle", "grouped"] = option(
        "shuffle",
        help="training batches: 'shuffle' (a permutation per epoch from the seed) or 'grouped' (the same permutation, "
        "batches of similar lengths within groups of 8 batches: less padding, other batches)",
        validator=attrs.validators.in_(BATCH_ORDERS),
    )
    null_stop_loss: float = option(
        0.0,
        help="end the contrast's null-task training once the mean excess loss of its last 5 steps is below this "
        "(0: every step); its targets are the prior, so it is flat after a few steps",
        validator=NON_NEGATIVE,
    )

    def training_settings(self, seed: int, **given: Any) -> Settings:
        """The loop's settings from these options; ``given`` adds the rest or replaces one (``learning_rate``)."""
        names = ("epochs", "learning_rate", "batch_size", "warmup_fraction", "weight_decay", "max_grad_norm")
        taken = {name: getattr(self, name) for name in names}
        taken.update(early_stopping_fraction=self.early_stopping_fraction, patience=self.patience)
        taken.update(precision=self.precision, batch_order=self.batch_order)
        return Settings(**{**taken, "seed": seed, "head_init": self.head_init, **given})

    def null_task_settings(self, settings: Settings) -> Settings:
        """The settings of the contrast's null task: the task's, ending at ``null_stop_loss`` when it is set."""
        return attrs.evolve(settings, stop_loss=self.null_stop_loss or None)


def training_option(name: str, default: Any) -> Any:
    """The :class:`TrainingOptions` option ``name`` with another default (the same help and validator)."""
    field = attrs.fields_dict(TrainingOptions)[name]
    return option(default, help=field.metadata["help"], validator=field.validator)


class Trainable(Protocol):
    """What the loop trains: a model (whose train/eval mode it switches), a head, the parameters that learn."""

    @property
    def model(self) -> Any: ...

    @property
    def head(self) -> Any: ...

    def pooled(self, surrogate: Surrogate, batch: Batch) -> torch.Tensor:
        """The (batch, hidden) features the head reads."""
        ...

    def param_groups(self, settings: Settings) -> list[dict[str, Any]]:
        """AdamW's parameter groups (with their learning rates and weight decays); clipping follows their order."""
        ...

    def snapshot(self) -> Any:
        """A copy of the learning state (to keep the best epoch)."""
        ...

    def restore(self, state: Any) -> None: ...


@attrs.define(eq=False)
class FineTuned:
    """A trainable copy of the surrogate and a fresh head: every weight learns (full fine-tuning)."""

    model: Any
    head: Any

    @classmethod
    def start(cls, surrogate: Surrogate, num_outputs: int, seed: int) -> FineTuned:
        from fute_kit_hf.surrogate import make_head

        return cls(surrogate.trainable_copy(), make_head(surrogate.hidden_size, num_outputs, seed, surrogate.device))

    def pooled(self, surrogate: Surrogate, batch: Batch) -> torch.Tensor:
        return surrogate.forward_features(self.model, batch, output_hidden_states=False).pooled

    def param_groups(self, settings: Settings) -> list[dict[str, Any]]:
        """One learning rate; weight decay on weight matrices only (not on biases and norms)."""
        decay, no_decay = [], []
        for module in (self.model, self.head):
            for param in module.parameters():
                (decay if param.ndim >= 2 else no_decay).append(param)
        return [
            {"params": decay, "lr": settings.learning_rate, "weight_decay": settings.weight_decay},
            {"params": no_decay, "lr": settings.learning_rate, "weight_decay": 0.0},
        ]

    def snapshot(self) -> Any:
        return {"model": copy.deepcopy(self.model.state_dict()), "head": copy.deepcopy(self.head.state_dict())}

    def restore(self, state: Any) -> None:
        self.model.load_state_dict(state["model"])
        self.head.load_state_dict(state["head"])


@attrs.frozen
class FitQuality:
    """How well the head fits some examples: mean excess loss, and agreement for class labels."""

    loss: float
    agreement: float | None  # share of examples whose argmax matches the label's class (None: regression)


def evaluate(
    surrogate: Surrogate,
    trainable: Trainable,
    tokenized: Tokenized,
    targets: Targets,
    positions: np.ndarray,
    batch_size: int,
    precision: str = "fp32",
) -> FitQuality:
    """Eval-mode (no dropout) mean excess loss and agreement on the examples at ``positions``, no gradients.

    ``precision``: a resolved one (``"fp32"`` or ``"bf16"``, :func:`fute_kit_hf.precision.resolve_precision`).
    """
    import torch

    model, head = trainable.model, trainable.head
    was_training = model.training
    model.eval()
    head.eval()
    total, agree, count = 0.0, 0, 0
    classes = targets.classes()
    with torch.inference_mode():
        for batch in surrogate.batches(tokenized.select(positions), batch_size, order="length"):
            rows = positions[batch.indices]
            target = targets.take(rows)
            with autocast(precision, surrogate.device):
                logits = head(trainable.pooled(surrogate, batch))
            logits = logits.float()  # the loss in float32 (a no-op in fp32)
            excess = per_example_loss(logits, target, targets.loss) - target_entropy(target, targets.loss)
            total += float(excess.double().sum())
            count += batch.size
            if classes is not None:
                wanted = classes[torch.as_tensor(rows, device=classes.device)]
                agree += int((logits.argmax(dim=-1) == wanted).sum())
    model.train(was_training)
    head.train(was_training)
    agreement = round(agree / max(1, count), 6) if classes is not None else None
    return FitQuality(total / max(1, count), agreement)


@attrs.define(eq=False)
class _Progress:
    """What the epochs did: per-step losses, held-out losses, the best epoch's state."""

    step_losses: list[float] = attrs.field(factory=list)
    held_losses: list[float] = attrs.field(factory=list)
    best_state: Any = None
    best_epoch: int | None = None
    epochs_run: int = 0
    stopped_at_step: int | None = None  # stop_loss ended training after this many steps


def train(
    surrogate: Surrogate,
    trainable: Trainable,
    tokenized: Tokenized,
    targets: Targets,
    settings: Settings,
    progress: Any = None,
) -> dict[str, Any]:
    """Train ``trainable`` in place (the best epoch's state when stopping early); return what training did."""
    started = time.perf_counter()
    precision = resolve_precision(settings.precision, surrogate.device)
    train_pos, held_pos = split_for_early_stopping(len(tokenized), settings.early_stopping_fraction, settings.seed)
    probe = train_pos[: settings.probe_size]
    before = evaluate(surrogate, trainable, tokenized, targets, probe, settings.batch_size, precision)
    probe_details: dict[str, Any] = {}
    if settings.head_init == "probe":
        from fute_kit_hf.probe import fit_probe_head

        trainable.model.eval()
        probe_details = fit_probe_head(
            surrogate,
            trainable.head,
            tokenized,
            targets,
            train_pos,
            settings.head_fit_batch_size or settings.batch_size,
            lambda batch: trainable.pooled(surrogate, batch),
        )
    run = _run_epochs(surrogate, trainable, tokenized, targets, settings, train_pos, held_pos, progress)
    if run.best_state is not None:
        trainable.restore(run.best_state)
    after = evaluate(surrogate, trainable, tokenized, targets, probe, settings.batch_size, precision)
    final = None
    if settings.final_pass:
        everything = np.arange(len(tokenized))
        final = evaluate(surrogate, trainable, tokenized, targets, everything, settings.batch_size, precision)
    steps = run.step_losses
    window = max(1, min(5, len(steps) // 4))
    details: dict[str, Any] = {
        "head_init": settings.head_init,
        **probe_details,
        "train_examples": len(train_pos),
        "held_out_examples": len(held_pos),
        "epochs_run": run.epochs_run,
        "steps": len(steps),
        "loss": targets.loss,
        "train_loss_first": round(float(np.mean(steps[:window])), 6) if steps else None,
        "train_loss_last": round(float(np.mean(steps[-window:])), 6) if steps else None,
        "probe_loss_before": round(before.loss, 6),
        "probe_loss_after": round(after.loss, 6),
        "probe_examples": len(probe),
        **({"final_loss": round(final.loss, 6)} if final is not None else {}),
        "train_seconds": round(time.perf_counter() - started, 3),
        "precision": precision,  # provenance: how the forward passes computed
        "optimizer": "adamw-fused" if _fused(settings, surrogate.device) else "adamw",
    }
    if run.stopped_at_step is not None:
        details["stopped_at_step"] = run.stopped_at_step
    if final is not None and final.agreement is not None:
        details["agreement_before"] = before.agreement
        details["agreement"] = final.agreement
    if run.held_losses:
        details["held_out_losses"] = [round(v, 6) for v in run.held_losses]
        details["best_epoch"] = run.best_epoch
    return details


def _run_epochs(
    surrogate: Surrogate,
    trainable: Trainable,
    tokenized: Tokenized,
    targets: Targets,
    settings: Settings,
    train_pos: np.ndarray,
    held_pos: np.ndarray,
    progress: Any,
) -> _Progress:
    """The epochs of AdamW steps, each followed by the held-out check when early stopping."""
    import torch

    precision = resolve_precision(settings.precision, surrogate.device)
    groups = trainable.param_groups(settings)
    fused = {"fused": True} if _fused(settings, surrogate.device) else {}  # fp32: the reference loop, as before
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate, **fused)
    clipped = [p for group in groups for p in group["params"]]
    steps_per_epoch = math.ceil(len(train_pos) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_then_linear(settings, steps_per_epoch))
    train_tok = tokenized.select(train_pos)
    run = _Progress()
    best_held, bad_epochs = math.inf, 0
    trainable.model.train(settings.dropout)
    trainable.head.train()
    with torch.random.fork_rng(devices=_rng_devices(surrogate.device)):
        torch.manual_seed(settings.seed)  # dropout masks: fixed by the space's seed
        for epoch in range(settings.epochs):
            batches = surrogate.batches(
                train_tok, settings.batch_size, order=settings.batch_order, seed=settings.seed, epoch=epoch
            )
            if progress is not None:
                desc = f"{settings.label} train {epoch + 1}/{settings.epochs}"
                batches = progress(batches, total=steps_per_epoch, desc=desc)
            for batch in batches:
                target = targets.take(train_pos[batch.indices])
                with autocast(precision, surrogate.device):
                    logits = trainable.head(trainable.pooled(surrogate, batch))
                loss = per_example_loss(logits.float(), target, targets.loss).mean()  # float32 loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(clipped, settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                run.step_losses.append(float(loss.detach() - target_entropy(target, targets.loss).mean()))
                if _loss_at_floor(run.step_losses, settings.stop_loss):
                    run.stopped_at_step = len(run.step_losses)
                    break
            run.epochs_run = epoch + 1
            if not len(held_pos):
                if run.stopped_at_step is not None:
                    break
                continue
            held = evaluate(surrogate, trainable, tokenized, targets, held_pos, settings.batch_size, precision).loss
            run.held_losses.append(held)
            if held < best_held - 1e-6:
                best_held, bad_epochs = held, 0
                run.best_state, run.best_epoch = trainable.snapshot(), epoch + 1
            else:
                bad_epochs += 1
                if bad_epochs >= settings.patience:
                    break
            if run.stopped_at_step is not None:
                break
    optimizer.zero_grad(set_to_none=True)  # free the last step's gradients
    return run


def _fused(settings: Settings, device: Any) -> bool:
    if settings.fused_optimizer is not None:
        return settings.fused_optimizer
    return fused_adamw(settings.precision, device)


def _loss_at_floor(step_losses: list[float], stop_loss: float | None) -> bool:
    """Whether the mean excess loss of the last STOP_WINDOW steps is below ``stop_loss`` (None: never)."""
    if stop_loss is None or len(step_losses) < STOP_WINDOW:
        return False
    return float(np.mean(step_losses[-STOP_WINDOW:])) < stop_loss


def _warmup_then_linear(settings: Settings, steps_per_epoch: int) -> Any:
    """The learning-rate factor of each step: linear warm-up, then linear decay to 0 at the last step."""
    total_steps = max(1, steps_per_epoch * settings.epochs)
    warmup = math.ceil(settings.warmup_fraction * total_steps)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return schedule


def _rng_devices(device: Any) -> list[Any]:
    return [device] if getattr(device, "type", "cpu") == "cuda" else []
