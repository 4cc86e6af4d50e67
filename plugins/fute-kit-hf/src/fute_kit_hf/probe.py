"""The head's starting point, fitted as a linear probe on the frozen surrogate's features.

A task embedding read from gradients (taskemb's Fisher) or from tuned parameters (tupate) passes
through the head: the gradient reaching the surrogate's top layer is ``W^T (p - y)``. A randomly
initialised head that a short CPU schedule barely moves therefore stamps the *seed's* random
directions on every embedding of the space. Fitting the head first on frozen features (linear probing
before fine-tuning, "LP-FT") replaces that with the task's own direction. The fit is a strictly convex
problem (L2-regularised logistic, soft-target or least-squares regression) solved from zero, so its
solution does not depend on the seed at all.

Methods offer it as the experimental ``head_init = "probe"``; the default stays ``"random"``. What it
does to seed stability and retrieval on the builtin data: experiments/NOTES.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from fute_kit_hf.targets import Targets, per_example_loss

if TYPE_CHECKING:
    import torch

    from fute_kit_hf.surrogate import Batch, Surrogate, Tokenized

# L2 strength of the probe (on the mean loss). Small enough to fit the labels, large enough that a
# separable task does not drive the head to infinite confidence (and the Fisher to zero).
PROBE_L2 = 1e-2


def pooled_features(
    surrogate: Surrogate,
    tokenized: Tokenized,
    positions: np.ndarray,
    batch_size: int,
    features: Callable[[Batch], torch.Tensor],
) -> torch.Tensor:
    """(len(positions), hidden) features of the given examples, in the order of ``positions``, no gradients."""
    import torch

    rows: list[torch.Tensor] = []
    order: list[np.ndarray] = []
    with torch.inference_mode():
        for batch in surrogate.batches(tokenized.select(positions), batch_size, order="length"):
            rows.append(features(batch).float())
            order.append(batch.indices)
    stacked = torch.cat(rows)
    inverse = np.empty(len(positions), dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(len(positions))
    return stacked[torch.as_tensor(inverse, device=stacked.device)].clone()


def fit_probe(head: torch.nn.Linear, features: torch.Tensor, targets: Any, loss: str, l2: float = PROBE_L2) -> dict:
    """Set ``head`` to the minimiser of mean loss + l2/2 * |W|^2 on (features, targets); returns fit details."""
    import torch

    weight = torch.zeros_like(head.weight, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros_like(head.bias, dtype=torch.float64, requires_grad=True)
    x = features.detach().to(torch.float64)
    y = targets.to(torch.float64) if targets.is_floating_point() else targets
    optimizer = torch.optim.LBFGS(
        [weight, bias],
        lr=1.0,
        max_iter=200,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        value = per_example_loss(x @ weight.T + bias, y, loss).mean() + 0.5 * l2 * (weight**2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        final = float(optimizer.step(objective).detach())
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight.dtype))
        head.bias.copy_(bias.to(head.bias.dtype))
    return {"probe_fit_loss": round(final, 6), "probe_weight_norm": round(float(weight.detach().norm()), 6)}


def fit_probe_head(
    surrogate: Surrogate,
    head: torch.nn.Linear,
    tokenized: Tokenized,
    targets: Targets,
    positions: np.ndarray,
    batch_size: int,
    features: Callable[[Batch], torch.Tensor],
) -> dict[str, Any]:
    """Fit ``head`` as a linear probe on the examples at ``positions`` (eval-mode features, no gradients)."""
    x = pooled_features(surrogate, tokenized, positions, batch_size, features)
    return fit_probe(head, x, targets.take(positions), targets.loss)
