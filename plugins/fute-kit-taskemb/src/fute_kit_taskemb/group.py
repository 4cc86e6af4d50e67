"""``TaskEmb.embed_group``: the trainings of many subjects stacked (one GPU busy with all), then each one's embed.

Step 1 of taskemb (fine-tuning a copy of the surrogate) dominates an embedding's cost, and on a GPU one small
surrogate leaves most of the device idle. For a group of subjects this module trains every subject's task
and, with the contrast, its null task as members of one stack (:mod:`fute_kit_hf.stacked`), then runs each
subject's ordinary :meth:`TaskEmb.embed`: its ``_fisher`` finds the copy already trained for those exact
texts, targets and settings (:func:`trained_copy`) and goes on to the Fisher pass, so the details, warnings
and contrast are computed by the same code as one at a time. A training with nothing stacked for it (a
singleton, an option stacking does not support, a cache hit that made it unnecessary) runs one at a time.
Identical members (two subjects with the same null task) are trained once.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from fute_kit.plugin import Examples, MethodResult, RunContext

if TYPE_CHECKING:
    from fute_kit_hf.null_task import NullTaskCache
    from fute_kit_hf.stacked import Member
    from fute_kit_hf.surrogate import Surrogate, Tokenized
    from fute_kit_hf.targets import Targets
    from fute_kit_hf.training import FineTuned, Settings

log = logging.getLogger("fute_kit")

STACK_SIZE = 16  # members per stack: K copies of the surrogate, their gradients and AdamW state in memory


@attrs.define(eq=False)
class _Trained:
    """Copies trained by the group, waiting for the embed that needs them (by member key)."""

    entries: dict[Any, tuple[Any, dict[str, Any]]] = attrs.field(factory=dict)
    uses: dict[Any, int] = attrs.field(factory=dict)
    taken: set[Any] = attrs.field(factory=set)

    def take(self, key: Any) -> tuple[Any, dict[str, Any]] | None:
        if key not in self.entries:
            return None
        self.taken.add(key)
        self.uses[key] -= 1
        return self.entries[key] if self.uses[key] else self.entries.pop(key)  # the last user frees it


_TRAINED: contextvars.ContextVar[_Trained | None] = contextvars.ContextVar("taskemb_group_trained", default=None)


def member_key(model: Surrogate, tokenized: Tokenized, targets: Targets, settings: Settings) -> tuple[Any, ...]:
    """Everything a training depends on: the loaded surrogate, the token ids, the targets, the settings."""
    values = targets.values.detach().cpu().numpy()
    texts = (tokenized.input_ids, tokenized.token_type_ids, tokenized.max_length)
    labels = (targets.loss, targets.num_outputs, values.dtype.str, values.shape, values.tobytes())
    return (id(model), texts, labels, settings)


def trained_copy(
    model: Surrogate, tokenized: Tokenized, targets: Targets, settings: Settings, progress: Any
) -> tuple[FineTuned, dict[str, Any]]:
    """The copy trained for these texts and targets: taken from the running group, else trained now."""
    from fute_kit_hf.training import FineTuned, train

    group = _TRAINED.get()
    found = group.take(member_key(model, tokenized, targets, settings)) if group is not None else None
    if found is not None:
        return found
    trained = FineTuned.start(model, targets.num_outputs, settings.seed)
    return trained, train(model, trained, tokenized, targets, settings, progress)


def embed_group(method: Any, items: Sequence[Examples], surrogate: str, context: RunContext) -> list[MethodResult]:
    """Train the group's members stacked, then embed each item (one at a time where stacking cannot be used)."""
    from fute_kit_hf.null_task import NullTaskCache
    from fute_kit_hf.surrogate import load_surrogate

    model = load_surrogate(surrogate, method.device)
    settings = method.training_settings(method.seed, head_fit_batch_size=method.batch_size * 2, label="taskemb")
    cache = NullTaskCache.of(context, method.name)
    keys, members = _members(method, items, model, settings, cache)  # every item's labels checked before training
    group = _Trained()
    _train_stacks(model, keys, members, settings, context.progress if context.show_progress else None, group)
    token = _TRAINED.set(group)
    try:
        results = [method.embed(item, surrogate, context) for item in items]
    finally:
        _TRAINED.reset(token)
    unused = [key for key in group.entries if key not in group.taken]
    if unused:  # trained for nothing: embed's settings differ from the group's
        log.info("taskemb: %d stacked trainings were not used by their subjects", len(unused))
    return results


def _members(
    method: Any, items: Sequence[Examples], model: Surrogate, settings: Settings, cache: NullTaskCache
) -> tuple[list[Any], list[Member]]:
    """The distinct trainings of the items (task, then null task with the contrast) and their keys.

    A null task whose result is already in the null-task cache is left out: embed reads it from there. So is
    one that stops early (``null_stop_loss``): it ends at its own step, and embed trains it alone.
    """
    from fute_kit_hf.null_task import null_task_key
    from fute_kit_hf.stacked import Member
    from fute_kit_hf.targets import is_null_task, make_targets, prior_targets

    keys: list[Any] = []
    members: list[Member] = []
    uniform = method.contrast == "uniform"
    for examples in items:
        checked = make_targets(examples, method.soft_loss, "cpu")
        if method.contrast != "none" and is_null_task(checked, uniform=uniform):
            continue  # embed returns zeros without training
        tokenized = model.tokenize(examples, method.max_length)
        targets = make_targets(examples, method.soft_loss, model.device)
        wanted = [targets]
        if method.contrast != "none" and not method.null_stop_loss:
            null = prior_targets(targets, uniform=uniform)
            if not cache.path(null_task_key(method, model, tokenized, null, settings)).is_file():
                wanted.append(null)
        for member_targets in wanted:
            keys.append(member_key(model, tokenized, member_targets, settings))
            members.append(Member(tokenized, member_targets))
    return keys, members


def _train_stacks(
    model: Surrogate, keys: list[Any], members: list[Member], settings: Settings, progress: Any, group: _Trained
) -> None:
    """Stacks of up to STACK_SIZE distinct members with heads of one size; a lone member is left to embed."""
    import math

    from fute_kit_hf.stacked import stacking_problem, train_stacked

    by_size: dict[int, dict[Any, Member]] = {}
    for key, member in zip(keys, members, strict=True):
        group.uses[key] = group.uses.get(key, 0) + 1
        by_size.setdefault(member.targets.num_outputs, {})[key] = member
    for distinct in by_size.values():
        chunk_keys = list(distinct)
        size = math.ceil(len(chunk_keys) / math.ceil(len(chunk_keys) / STACK_SIZE))  # even chunks, none of 1
        for start in range(0, len(chunk_keys), size):
            chunk = chunk_keys[start : start + size]
            stack = [distinct[k] for k in chunk]
            problem = stacking_problem(model, stack, settings) if len(chunk) > 1 else "a lone training"
            if problem is not None:
                log.info("taskemb: %d trainings run one at a time: %s", len(chunk), problem)
                continue
            group.entries.update(zip(chunk, train_stacked(model, stack, settings, progress), strict=True))
