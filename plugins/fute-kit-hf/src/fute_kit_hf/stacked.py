"""Many fine-tunings of one surrogate at once: K members (same architecture, different data) in lock-step.

One-at-a-time training (:mod:`fute_kit_hf.training`) leaves a GPU mostly idle on a small surrogate: a
batch of 16 short texts is a few small kernels. Here the K members' weights are stacked
(``torch.func.stack_module_state``: every parameter gains a leading member axis) and one step runs the
forward and backward of all K batches as one ``vmap``-ed ``functional_call``, so each kernel does K
members' work.

Each member keeps the semantics of :func:`fute_kit_hf.training.train` (the same ``Settings``): its own
data order (the permutation of ``(seed, epoch)`` over its own examples), the head initialised from
``(seed, num_outputs)``, AdamW (elementwise, so it runs on the stacked tensors; weight decay on weight
matrices only), the warm-up + linear schedule over its own number of steps, and gradient clipping on its
own gradient norm. Per step the K batches are padded to a common (rows, tokens) shape: padded rows
repeat the batch's first row and carry no loss, padded tokens are masked as usual. A member with fewer
steps than the longest one is masked once it is done: its weights and AdamW state no longer change.

Differences from one-at-a-time, by construction: dropout masks are drawn per member by ``vmap``
(``randomness="different"``) from the same seed, so with dropout on a member's weights match its
one-at-a-time twin only at seed level; with dropout off they match to float rounding (attention runs
the "eager" implementation here, with an additive mask). Supported: encoder surrogates (BERT-like,
mean-pooled), no early stopping, the random head start; :func:`stacking_problem` says why anything else
trains one at a time.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from fute_kit_hf.targets import Targets, per_example_loss, target_entropy
from fute_kit_hf.training import FineTuned, Settings, _rng_devices, _warmup_then_linear, evaluate

if TYPE_CHECKING:
    import torch

    from fute_kit_hf.surrogate import Batch, Surrogate, Tokenized

ADAM_BETAS = (0.9, 0.999)  # torch.optim.AdamW's defaults, as training.py uses them
ADAM_EPS = 1e-8


@attrs.frozen(eq=False)
class Member:
    """One fine-tuning of the stack: a dataset tokenised once and its targets."""

    tokenized: Tokenized
    targets: Targets


def stacking_problem(surrogate: Surrogate, members: Sequence[Member], settings: Settings) -> str | None:
    """Why these members cannot be trained stacked (they then train one at a time), or None."""
    if not members:
        return "no members to train"
    if surrogate.family != "encoder":
        return f"stacked training supports encoder surrogates; {surrogate.name!r} is a {surrogate.family}"
    if settings.early_stopping_fraction > 0:
        return "early stopping keeps each member's best epoch: members train one at a time"
    if settings.head_init != "random":
        return f"head_init {settings.head_init!r} fits each head on its own first: members train one at a time"
    outputs = {m.targets.num_outputs for m in members}
    if len(outputs) > 1:
        return f"members' heads differ in size ({sorted(outputs)} outputs): stack members of one size"
    if any(len(m.tokenized) == 0 for m in members):
        return "a member has no examples"
    if getattr(settings, "stop_loss", None) is not None:
        return "stop_loss ends each training at its own step: members train one at a time"
    return None


def _precision(settings: Settings, device: Any) -> str:
    """The resolved precision of the forward passes: "fp32", or what ``fute_kit_hf.precision`` makes of the setting."""
    choice = getattr(settings, "precision", "fp32")
    if choice == "fp32":
        return "fp32"
    from fute_kit_hf.precision import resolve_precision  # settings with a precision come with that module

    return str(resolve_precision(choice, device))


def _autocast(precision: str, device: Any) -> Any:
    import contextlib

    if precision == "fp32":
        return contextlib.nullcontext()
    from fute_kit_hf.precision import autocast

    return autocast(precision, device)


def train_stacked(
    surrogate: Surrogate, members: Sequence[Member], settings: Settings, progress: Any = None
) -> list[tuple[FineTuned, dict[str, Any]]]:
    """Train every member at once; return each one's trained copy and what its training did.

    The details have the keys of :func:`fute_kit_hf.training.train`'s, plus ``stacked_members`` (K);
    ``train_seconds`` is the whole stack's wall time.
    """
    problem = stacking_problem(surrogate, members, settings)
    if problem is not None:
        raise ValueError(f"cannot train stacked: {problem}")
    started = time.perf_counter()
    precision = _precision(settings, surrogate.device)
    given = {"precision": precision} if precision != "fp32" else {}  # evaluate's argument where it exists

    def quality(trainable: FineTuned, member: Member, positions: np.ndarray) -> Any:
        return evaluate(surrogate, trainable, member.tokenized, member.targets, positions, settings.batch_size, **given)

    trainables = [FineTuned.start(surrogate, m.targets.num_outputs, settings.seed) for m in members]
    probes = [np.arange(min(len(m.tokenized), settings.probe_size)) for m in members]
    before = [quality(t, m, p) for t, m, p in zip(trainables, members, probes, strict=True)]
    step_losses = _train_lockstep(surrogate, trainables, members, settings, precision, progress)
    seconds = round(time.perf_counter() - started, 3)
    results = []
    for k, (trainable, member) in enumerate(zip(trainables, members, strict=True)):
        after = quality(trainable, member, probes[k])
        final = quality(trainable, member, np.arange(len(member.tokenized))) if settings.final_pass else None
        details = _member_details(member, settings, step_losses[k], before[k], after, final, len(probes[k]))
        details.update(train_seconds=seconds, precision=precision, optimizer="adamw-stacked")
        results.append((trainable, {**details, "stacked_members": len(members)}))
    return results


def _member_details(
    member: Member, settings: Settings, steps: list[float], before: Any, after: Any, final: Any, probe: int
) -> dict[str, Any]:
    """What one member's training did, with the keys (and rounding) of one-at-a-time training's details."""
    window = max(1, min(5, len(steps) // 4))
    details: dict[str, Any] = {
        "head_init": settings.head_init,
        "train_examples": len(member.tokenized),
        "held_out_examples": 0,
        "epochs_run": settings.epochs,
        "steps": len(steps),
        "loss": member.targets.loss,
        "train_loss_first": round(float(np.mean(steps[:window])), 6),
        "train_loss_last": round(float(np.mean(steps[-window:])), 6),
        "probe_loss_before": round(before.loss, 6),
        "probe_loss_after": round(after.loss, 6),
        "probe_examples": probe,
    }
    if final is not None:
        details["final_loss"] = round(final.loss, 6)
        if final.agreement is not None:
            details["agreement_before"] = before.agreement
            details["agreement"] = final.agreement
    return details


def _member_batches(surrogate: Surrogate, member: Member, settings: Settings) -> Iterator[Batch]:
    """A member's training batches over all epochs: the order one-at-a-time training uses."""
    for epoch in range(settings.epochs):
        yield from surrogate.batches(
            member.tokenized, settings.batch_size, order=settings.batch_order, seed=settings.seed, epoch=epoch
        )


def _train_lockstep(
    surrogate: Surrogate,
    trainables: list[FineTuned],
    members: Sequence[Member],
    settings: Settings,
    precision: str,
    progress: Any,
) -> list[list[float]]:
    """The AdamW steps of all members together; trained weights are written back into ``trainables``."""
    import torch

    stack = _Stack.build(trainables)
    total = [settings.epochs * math.ceil(len(m.tokenized) / settings.batch_size) for m in members]
    schedules = [_warmup_then_linear(settings, n // settings.epochs) for n in total]
    streams = [_member_batches(surrogate, m, settings) for m in members]
    last: list[Batch | None] = [None] * len(members)
    losses: list[torch.Tensor] = []
    steps: Any = range(max(total))
    if progress is not None:
        steps = progress(steps, total=max(total), desc=f"{settings.label} stacked x{len(members)}")
    with torch.random.fork_rng(devices=_rng_devices(surrogate.device)):
        torch.manual_seed(settings.seed)  # dropout masks: fixed by the space's seed
        for step in steps:
            active = [step < n for n in total]
            for k, stream in enumerate(streams):
                if active[k]:
                    last[k] = next(stream)
            batch = _padded_stack(last, members, surrogate.device)  # type: ignore[arg-type]
            params = stack.views(stack.flat.detach().requires_grad_(True))
            with _autocast(precision, surrogate.device):
                logits = stack.logits(params, batch, dropout=settings.dropout)
            logits = logits.float()  # the loss in float32 (a no-op in fp32)
            excess = _member_losses(logits, batch, members)  # (K,) mean loss of each member's real rows
            active_t = torch.tensor(active, device=surrogate.device)
            grad, used = stack.gradients((excess["loss"] * active_t).sum(), params)
            factors = [schedules[k](step) if active[k] else 0.0 for k in range(len(members))]
            stack.adamw_step(grad, used, settings, factors, active_t)
            losses.append(excess["excess"].detach())
    stack.write_back(trainables)
    table = torch.stack(losses).cpu().numpy() if losses else np.zeros((0, len(members)))
    return [[float(v) for v in table[: total[k], k]] for k in range(len(members))]


@attrs.frozen(eq=False)
class _StackedBatch:
    """K members' batches padded to one (K, rows, tokens) shape, with each member's row mask and targets."""

    input_ids: Any  # (K, B, T)
    attention: Any  # (K, B, T) 1 on real tokens
    token_types: Any  # (K, B, T) or None
    rows: Any  # (K, B) bool: a real row (padded rows repeat the first one and carry no loss)
    targets: list[Any]  # per member: (B, ...) targets of its rows


def _padded_stack(batches: Sequence[Batch], members: Sequence[Member], device: Any) -> _StackedBatch:
    """Pad every member's batch to the largest rows and tokens of this step and stack them."""
    import torch
    import torch.nn.functional as F

    rows = max(b.size for b in batches)
    width = max(int(b.inputs["input_ids"].shape[1]) for b in batches)
    stacked: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    row_mask, targets = [], []
    for batch, member in zip(batches, members, strict=True):
        repeat = torch.cat([torch.arange(batch.size), torch.zeros(rows - batch.size, dtype=torch.long)])
        for key in stacked:
            if key in batch.inputs:
                tensor = batch.inputs[key][repeat.to(device)]
                stacked[key].append(F.pad(tensor, (0, width - tensor.shape[1])))  # pad id 0: masked anyway
        row_mask.append(torch.arange(rows) < batch.size)
        targets.append(member.targets.take(batch.indices[repeat.numpy()]))
    types = stacked["token_type_ids"]
    return _StackedBatch(
        torch.stack(stacked["input_ids"]),
        torch.stack(stacked["attention_mask"]),
        torch.stack(types) if len(types) == len(batches) else None,
        torch.stack(row_mask).to(device),
        targets,
    )


def _member_losses(logits: Any, batch: _StackedBatch, members: Sequence[Member]) -> dict[str, Any]:
    """Each member's mean loss over its real rows (K,), and its excess over the targets' entropy."""
    import torch

    losses, entropies = [], []
    for k, member in enumerate(members):  # over members (each has its own loss), not examples
        losses.append(per_example_loss(logits[k], batch.targets[k], member.targets.loss))
        entropies.append(target_entropy(batch.targets[k], member.targets.loss))
    rows = batch.rows.to(logits.dtype)
    count = rows.sum(dim=1).clamp_min(1.0)
    loss = (torch.stack(losses) * rows).sum(dim=1) / count
    entropy = (torch.stack(entropies).to(logits.dtype) * rows).sum(dim=1) / count
    return {"loss": loss, "excess": loss.detach() - entropy}


@attrs.define(eq=False)
class _Stack:
    """The members' weights as one (K, P) tensor, its AdamW state, and the stateless modules they run in.

    Every weight of member k is a slice of row k of ``flat``, so AdamW and clipping are a dozen tensor
    operations per step whatever the number of weights (few kernel launches on a GPU).
    """

    model: Any  # template backbone on the "meta" device (eager attention: it batches under vmap)
    head: Any  # template head
    layout: dict[str, tuple[int, int, tuple[int, ...]]]  # "model.<name>" / "head.<name>": (start, end, shape)
    flat: Any  # (K, P) every member's weights
    buffers: dict[str, Any]  # (K, ...) stacked buffers
    decay: Any  # (P,) 1 on weight matrices (AdamW's weight decay applies to them only)
    exp_avg: Any  # (K, P)
    exp_avg_sq: Any  # (K, P)
    steps: Any  # (K,) float64: each member's AdamW step count

    @classmethod
    def build(cls, trainables: list[FineTuned]) -> _Stack:
        import torch
        from torch.func import stack_module_state

        layout: dict[str, tuple[int, int, tuple[int, ...]]] = {}
        columns, decay, buffers = [], [], {}
        for prefix, modules in (("model.", [t.model for t in trainables]), ("head.", [t.head for t in trainables])):
            params, module_buffers = stack_module_state(modules)
            buffers.update({prefix + name: value for name, value in module_buffers.items()})
            for name, value in params.items():
                start = sum(c.shape[1] for c in columns)
                columns.append(value.detach().reshape(len(trainables), -1))
                layout[prefix + name] = (start, start + columns[-1].shape[1], tuple(value.shape[1:]))
                decay.append(torch.full((columns[-1].shape[1],), float(value.dim() >= 3), device=value.device))
        flat = torch.cat(columns, dim=1)
        template = copy.deepcopy(trainables[0].model).to("meta")
        template.set_attn_implementation("eager")
        return cls(
            template,
            copy.deepcopy(trainables[0].head).to("meta"),
            layout,
            flat,
            buffers,
            torch.cat(decay).to(flat.dtype),
            torch.zeros_like(flat),
            torch.zeros_like(flat),
            torch.zeros(len(trainables), dtype=torch.float64, device=flat.device),
        )

    def views(self, flat: Any) -> dict[str, Any]:
        """Every weight as a (K, ...) view of ``flat``."""
        k = flat.shape[0]
        return {name: flat[:, a:b].view(k, *shape) for name, (a, b, shape) in self.layout.items()}

    def logits(self, params: dict[str, Any], batch: _StackedBatch, dropout: bool) -> Any:
        """(K, B, outputs): every member's head on its mean-pooled last layer, one vmapped call."""
        from torch.func import functional_call, vmap

        self.model.train(dropout)
        self.head.train()

        def one(params: dict, buffers: dict, ids: Any, attention: Any, types: Any) -> Any:
            model_state = _prefixed(params, "model."), _prefixed(buffers, "model.")
            additive = (1.0 - attention[:, None, None, :].float()) * _finfo_min()
            kwargs = {"token_type_ids": types} if types is not None else {}
            out = functional_call(self.model, model_state, (), {"input_ids": ids, "attention_mask": additive, **kwargs})
            last = out.last_hidden_state
            weights = attention.to(last.dtype).unsqueeze(-1)
            pooled = (last * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # as forward_features
            return functional_call(self.head, (_prefixed(params, "head."), {}), (pooled,))

        in_dims = (0, 0, 0, 0, 0 if batch.token_types is not None else None)
        run = vmap(one, in_dims=in_dims, randomness="different")
        return run(params, self.buffers, batch.input_ids, batch.attention, batch.token_types)

    def gradients(self, loss: Any, params: dict[str, Any]) -> tuple[Any, Any]:
        """(K, P) gradients of the summed member losses (row k: member k's own) and (P,) 1 where a weight had one.

        A weight no loss reaches (BERT's pooler) has no gradient: like torch's AdamW, its step leaves it alone.
        """
        import torch

        names = list(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        k = self.flat.shape[0]
        columns, used = [], []
        for name, grad in zip(names, grads, strict=True):
            a, b, _ = self.layout[name]
            columns.append(torch.zeros(k, b - a, device=self.flat.device) if grad is None else grad.reshape(k, -1))
            used.append(torch.full((b - a,), float(grad is not None), device=self.flat.device))
        return torch.cat(columns, dim=1).to(self.flat.dtype), torch.cat(used).to(self.flat.dtype)

    def adamw_step(self, grad: Any, used: Any, settings: Settings, factors: list[float], active: Any) -> None:
        """Per-member clipping, then torch.optim.AdamW's update; inactive members are left as they were."""
        import torch

        norm = grad.norm(dim=1, keepdim=True)  # (K, 1) each member's total gradient norm
        grad = grad * (settings.max_grad_norm / (norm + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s coefficient
        lr = torch.tensor(factors, dtype=torch.float64, device=grad.device) * settings.learning_rate
        self.steps += active.to(self.steps.dtype)
        beta1, beta2 = ADAM_BETAS
        step_size = (lr / (1 - beta1**self.steps).clamp_min(1e-12)).to(grad.dtype).unsqueeze(1)
        correction2 = (1 - beta2**self.steps).clamp_min(1e-12).sqrt().to(grad.dtype).unsqueeze(1)
        on = active.unsqueeze(1) & used.bool().unsqueeze(0)  # (K, P): what this step changes
        self.exp_avg = torch.where(on, self.exp_avg.lerp(grad, 1 - beta1), self.exp_avg)
        self.exp_avg_sq = torch.where(
            on, self.exp_avg_sq.mul(beta2).addcmul(grad, grad, value=1 - beta2), self.exp_avg_sq
        )
        denom = (self.exp_avg_sq.sqrt() / correction2).add_(ADAM_EPS)
        decayed = self.flat * (1 - lr.to(grad.dtype).unsqueeze(1) * settings.weight_decay * self.decay)
        self.flat = torch.where(on, decayed - step_size * self.exp_avg / denom, self.flat)

    def write_back(self, trainables: list[FineTuned]) -> None:
        """Copy member k's slice of every stacked weight into trainable k's own modules."""
        import torch

        views = self.views(self.flat)
        with torch.no_grad():
            for k, trainable in enumerate(trainables):
                for prefix, module in (("model.", trainable.model), ("head.", trainable.head)):
                    for name, param in module.named_parameters():
                        param.copy_(views[prefix + name][k])


def _prefixed(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name[len(prefix) :]: value for name, value in state.items() if name.startswith(prefix)}


def _finfo_min() -> float:
    import torch

    return float(torch.finfo(torch.float32).min)
