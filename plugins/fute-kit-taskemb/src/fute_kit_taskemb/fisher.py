"""Step 2 of taskemb: the diagonal empirical Fisher of the surrogate's activations.

With every weight frozen, the loss of a batch is the SUM of per-example losses. The gradient of that
sum with respect to an activation of example i is the gradient of example i's own loss (rows of a
batch do not interact), so one batched ``torch.autograd.grad`` gives exact per-example gradients:
square them per token, average over the example's real tokens, then over examples. No per-example
loop, and no weight gradient is ever computed.

``reduction="reference"`` reproduces the reference code's mistake (gradients summed over the batch
before squaring, so results depend on the batch size); it exists only to compare with old results.
``labels="sampled"`` draws each example's label from the model's own predictive distribution (the
true Fisher); each sampled gradient is squared on its own, never averaged first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs
import numpy as np

from fute_kit_hf.targets import Targets, per_example_loss, target_entropy

if TYPE_CHECKING:
    import torch

    from fute_kit_hf.surrogate import Batch, Surrogate, Tokenized
    from fute_kit_hf.training import FineTuned

Components = Literal["both", "layers", "pooled"]
LabelMode = Literal["empirical", "sampled"]
Reduction = Literal["exact", "reference"]


@attrs.define(eq=False)
class FisherResult:
    """The (components x hidden) Fisher matrix (float64) and what the pass saw."""

    array: np.ndarray
    row_names: list[str]
    details: dict[str, Any]


def component_names(num_layers: int, components: Components) -> list[str]:
    names = []
    if components in ("both", "layers"):
        names += [f"layer_{i + 1}" for i in range(num_layers)]
    if components in ("both", "pooled"):
        names.append("pooled")
    return names


def draw_noise(n: int, targets: Targets, seed: int) -> np.ndarray:
    """Random numbers for sampled labels, one row per example, drawn once from the seed.

    Indexing them by the example's position makes sampled labels independent of batching.
    """
    rng = np.random.default_rng([int(seed), 11])
    if targets.loss == "bce":
        return rng.random((n, targets.num_outputs))
    if targets.loss == "mse":
        return rng.standard_normal(n)
    return rng.random(n)


def sample_targets(logits: torch.Tensor, targets: Targets, noise: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Labels drawn from the model's predictive distribution, and the loss that goes with them."""
    import torch

    logits = logits.detach()
    if targets.loss in ("ce", "soft-ce"):
        cumulative = torch.softmax(logits.double(), dim=-1).cumsum(dim=-1)
        drawn = torch.searchsorted(cumulative, noise.double().unsqueeze(-1)).squeeze(-1)
        return drawn.clamp_max(logits.shape[-1] - 1), "ce"
    if targets.loss == "bce":
        return (noise < torch.sigmoid(logits)).to(logits.dtype), "bce"
    return logits.squeeze(-1) + noise.to(logits.dtype), "mse"


def _freeze(module: Any) -> None:
    module.eval()
    module.requires_grad_(False)


def batch_gradients(
    surrogate: Surrogate,
    trained: FineTuned,
    batch: Batch,
    make_target: Callable[[torch.Tensor], tuple[torch.Tensor, str]],
    components: Components,
    precision: str = "fp32",
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor, Any]:
    """Gradients of the summed loss w.r.t. the chosen activations, plus logits, target, losses and mask.

    ``make_target(logits)`` gives the batch's labels and loss name (sampled labels need the logits).
    ``precision``: a resolved one (``fute_kit_hf.precision``); the loss is float32 either way.
    """
    import torch

    from fute_kit_hf.precision import autocast

    with torch.enable_grad():
        with autocast(precision, surrogate.device):
            features = surrogate.forward_features(
                trained.model, batch, output_hidden_states=components != "pooled", inputs_require_grad=True
            )
            logits = trained.head(features.pooled)
        logits = logits.float()  # a no-op in fp32
        target, loss_name = make_target(logits)
        losses = per_example_loss(logits, target, loss_name)  # type: ignore[arg-type]
        wanted = []
        if components in ("both", "layers"):
            wanted += features.layers
        if components in ("both", "pooled"):
            wanted.append(features.pooled)
        grads = torch.autograd.grad(losses.sum(), wanted, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wanted, strict=True)]
    return grads, logits.detach(), target, losses.detach(), features.mask


def fisher_pass(
    surrogate: Surrogate,
    trained: FineTuned,
    tokenized: Tokenized,
    targets: Targets,
    *,
    components: Components = "both",
    labels: LabelMode = "empirical",
    reduction: Reduction = "exact",
    batch_size: int = 32,
    seed: int = 0,
    progress: Any = None,
    precision: str = "fp32",
) -> FisherResult:
    """The diagonal Fisher of each component over the whole dataset, in length-sorted batches.

    ``trained``: the fine-tuned copy of the surrogate and its head (frozen here, for good).
    ``precision``: "fp32" (default), "bf16" or "auto" (``fute_kit_hf.precision``), recorded in the details.
    """
    import torch

    from fute_kit_hf.precision import resolve_precision

    started = time.perf_counter()
    precision = resolve_precision(precision, surrogate.device)
    _freeze(trained.model)
    _freeze(trained.head)
    n = len(tokenized)
    names = component_names(surrogate.num_layers, components)
    sums = torch.zeros(len(names), surrogate.hidden_size, dtype=torch.float64, device=surrogate.device)
    noise_all = torch.as_tensor(draw_noise(n, targets, seed)) if labels == "sampled" else None
    classes = targets.classes()
    agree, excess_total, real_tokens, processed, batches_seen = 0, 0.0, 0, 0, 0
    iterator = surrogate.batches(tokenized, batch_size, order="length")
    if progress is not None:
        iterator = progress(iterator, total=-(-n // batch_size), desc="taskemb fisher")
    for batch in iterator:
        given = targets.take(batch.indices)
        if noise_all is not None:
            noise = noise_all[torch.as_tensor(batch.indices)].to(surrogate.device)

            def make_target(logits: torch.Tensor, noise: torch.Tensor = noise) -> tuple[torch.Tensor, str]:
                return sample_targets(logits, targets, noise)
        else:

            def make_target(logits: torch.Tensor, given: torch.Tensor = given) -> tuple[torch.Tensor, str]:
                return given, targets.loss

        grads, logits, _, losses, mask = batch_gradients(surrogate, trained, batch, make_target, components, precision)
        sums += reduce_batch(grads, mask, reduction)
        if classes is not None:
            agree += int((logits.argmax(dim=-1) == classes[torch.as_tensor(batch.indices)]).sum())
        if labels == "empirical":
            excess_total += float((losses - target_entropy(given, targets.loss)).double().sum())
        real_tokens += batch.real_tokens
        processed += batch.processed_tokens
        batches_seen += 1
    array = (sums / max(1, n)).cpu().numpy()
    details: dict[str, Any] = {
        "fisher_seconds": round(time.perf_counter() - started, 3),
        "fisher_batches": batches_seen,
        "padding_efficiency": round(real_tokens / max(1, processed), 4),
        "components": names,
        "fisher_precision": precision,
    }
    if classes is not None:
        details["agreement"] = round(agree / max(1, n), 6)
    if labels == "empirical":
        details["final_loss"] = round(excess_total / max(1, n), 6)
    return FisherResult(array, names, details)


def reduce_batch(grads: list[torch.Tensor], mask: Any, reduction: Reduction) -> torch.Tensor:
    """Per-component sums over the batch of the per-example mean squared gradient.

    ``grads``: token-level (b, t, h) tensors for layers and a (b, h) tensor for the pooled output.
    """
    import torch

    rows = []
    weights = mask.to(torch.float64).unsqueeze(-1)  # (b, t, 1)
    tokens = weights.sum(dim=1).clamp_min(1.0)  # (b, 1)
    for g in grads:
        g = g.double()
        if g.dim() == 3:
            if reduction == "exact":
                # square per token, mean over the example's real tokens, sum over examples
                rows.append(((g * g) * weights).sum(dim=1).div(tokens).sum(dim=0))
            else:
                # reference (wrong): sum over the batch first, then square; mean over positions
                summed = (g * weights).sum(dim=0)  # (t, h)
                positions = weights.sum(dim=0).gt(0).to(torch.float64)  # (t, 1)
                rows.append(((summed * summed) * positions).sum(dim=0) / positions.sum().clamp_min(1.0))
        else:
            rows.append((g * g).sum(dim=0) if reduction == "exact" else g.sum(dim=0) ** 2)
    return torch.stack(rows)


def per_example_fisher(
    surrogate: Surrogate,
    trained: FineTuned,
    tokenized: Tokenized,
    targets: Targets,
) -> np.ndarray:
    """The same empirical Fisher of every component, one example at a time (slow): to check ``fisher_pass``."""
    _freeze(trained.model)
    _freeze(trained.head)
    names = component_names(surrogate.num_layers, "both")
    total = np.zeros((len(names), surrogate.hidden_size), dtype=np.float64)
    for i in range(len(tokenized)):
        batch = next(surrogate.batches(tokenized.select([i]), 1, order="given"))
        target = targets.take(np.array([i]))

        def make_target(logits: torch.Tensor, target: torch.Tensor = target) -> tuple[torch.Tensor, str]:
            return target, targets.loss

        grads, *_ = batch_gradients(surrogate, trained, batch, make_target, "both")
        for r, g in enumerate(grads):
            g = g[0].double()
            total[r] += (g * g).mean(dim=0).cpu().numpy() if g.dim() == 2 else (g * g).cpu().numpy()
    return total / max(1, len(tokenized))
