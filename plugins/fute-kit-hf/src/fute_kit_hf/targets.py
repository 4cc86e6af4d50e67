"""Labels as training targets, shared by every method that trains the surrogate on labelled examples.

A dataset's hard labels, a model's soft labels (its output probabilities) and regression scores become
tensors with the loss that fits them; the helpers here check, after training, whether the surrogate (or
the tuned parameters) learned those labels at all, since an embedding of an untrained model only
describes its initialisation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples

if TYPE_CHECKING:
    import torch

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


SoftLoss = Literal["ce", "bce", "hard"]
SOFT_LOSSES: tuple[str, ...] = ("ce", "bce", "hard")
HEAD_INITS: tuple[str, ...] = ("random", "probe")


def make_targets(examples: Examples, soft_loss: SoftLoss, device: Any, method: str = "taskemb") -> Targets:
    """Validate the labels and turn them into tensors; errors name the method, the dataset and the fix."""
    import torch

    where = f"{method}: examples {examples.name!r}" if examples.name else f"{method}: examples"
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
        k_soft = int(labels.shape[1])
        if soft_loss == "hard":
            # Pseudo-labels: the model's decisions, learned exactly like a dataset's hard labels (ties: first class).
            return Targets(torch.as_tensor(labels.argmax(axis=1), dtype=torch.long, device=device), "ce", k_soft)
        values = torch.as_tensor(labels / labels.sum(axis=1, keepdims=True), dtype=torch.float32, device=device)
        return Targets(values, "soft-ce" if soft_loss == "ce" else "bce", k_soft)
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


def split_for_early_stopping(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) positions; held-out is empty when ``fraction`` is 0."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    held = max(1, round(n * fraction))
    if n - held < 1:
        raise DataError(f"early_stopping_fraction {fraction} leaves no training examples out of {n}")
    order = np.random.default_rng([int(seed), 7]).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])


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


def prior_targets(targets: Targets, uniform: bool = False) -> Targets:
    """The null task on the same inputs: every example labelled with the labels' prior (mean regression target).

    A model that answers only its label prior is this task; an embedding contrasted with it keeps what the
    labels say beyond their number, balance and the texts they sit on. ``uniform``: every class equally
    likely instead (the balance of the labels then stays in the contrast).
    """
    import torch

    values = targets.values
    n = values.shape[0]
    if uniform and targets.loss in ("ce", "soft-ce", "bce"):
        k = targets.num_outputs
        fill = 0.5 if targets.loss == "bce" else 1.0 / k
        return Targets(torch.full((n, k), fill, device=values.device), "bce" if targets.loss == "bce" else "soft-ce", k)
    if targets.loss == "ce":
        prior = torch.bincount(values, minlength=targets.num_outputs).to(torch.float32) / max(1, n)
        return Targets(prior.expand(n, -1).clone(), "soft-ce", targets.num_outputs)
    if targets.loss in ("soft-ce", "bce"):
        return Targets(values.mean(dim=0).expand(n, -1).clone(), targets.loss, targets.num_outputs)
    return Targets(torch.zeros_like(values), "mse", 1)  # standardised targets: their mean is 0


def is_null_task(targets: Targets, uniform: bool = False) -> bool:
    """Whether the labels are their own null task (a constant model answering its prior): nothing to embed."""
    import torch

    null = prior_targets(targets, uniform=uniform)
    same = null.values.shape == targets.values.shape and null.loss == targets.loss
    return bool(same and torch.allclose(null.values, targets.values.float()))


# The warning of a method whose embedding is zero because the labels are their own null task.
NULL_TASK_WARNING = (
    "the embedding is zero: the labels say nothing beyond their prior (a constant model's MTE), so it is similar "
    "to nothing"
)
