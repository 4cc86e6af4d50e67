"""Group jobs: several embedding jobs of one space run as one task, trained together where the method can.

A method may offer ``embed_group(items, surrogate, context) -> list[MethodResult]`` (taskemb trains many
subjects at once on one GPU). An executor with ``group_size > 1`` packs a study's jobs with :func:`pack_jobs`
and runs each group as one task (one Ray task, one GPU request). Each member is prepared, stored and reported
exactly as its single job would be: members already stored are skipped, and a failing member is that
member's failure only (when the stacked call itself fails, the members are embedded one at a time, so the
failure lands on the member at fault and the others are kept).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import attrs

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit.pipeline import EmbedJob, JobOutcome
from fute_kit.registry import Registry, get_registry
from fute_kit.store import EmbeddingStore
from fute_kit.study_folder import StudyFolder

log = logging.getLogger("fute_kit")

# One member's result, as an executor yields it: (outcome, None) or (None, the exception it raised).
MemberResult = tuple[Any, BaseException | None]


def pack_jobs(jobs: Sequence[Callable[[], Any]], size: int) -> list[tuple[int, ...]]:
    """Indices of the jobs in groups of at most ``size`` embedding jobs of one space; any other job alone."""
    if size < 1:
        raise ValueError(f"group size must be at least 1, got {size}")
    groups: list[tuple[int, ...]] = []
    filling: dict[Hashable, list[int]] = {}
    for index, job in enumerate(jobs):
        key = _group_key(job)
        if key is None or size == 1:
            groups.append((index,))
            continue
        members = filling.setdefault(key, [])
        members.append(index)
        if len(members) == size:
            groups.append(tuple(filling.pop(key)))
    groups.extend(tuple(members) for members in filling.values())
    return sorted(groups)  # in the study's order, by each group's first job


def _group_key(job: Callable[[], Any]) -> Hashable | None:
    # Members share one method instance, surrogate, store and cache: all of these must be equal.
    if not isinstance(job, EmbedJob):
        return None
    return (job.space, job.out_dir, job.cache_dir, job.show_progress)


def grouped_tasks(jobs: Sequence[Callable[[], Any]], size: int) -> Iterator[tuple[tuple[int, ...], Callable[[], Any]]]:
    """(indices, task) per group: the job itself when alone, else a :class:`GroupJob` of its members."""
    for indices in pack_jobs(jobs, size):
        if len(indices) == 1:
            yield indices, jobs[indices[0]]
        else:
            yield indices, GroupJob(tuple(jobs[i] for i in indices))


@attrs.frozen
class GroupJob:
    """Embedding jobs of one space run together; returns one :data:`MemberResult` per member, in order."""

    members: tuple[EmbedJob, ...]

    @property
    def label(self) -> str:
        return f"{self.members[0].label} and {len(self.members) - 1} more"

    def __call__(self) -> list[MemberResult]:
        return run_group(self.members, get_registry())


@attrs.frozen
class _Pending:
    """A member whose examples are ready and whose embedding is not stored yet."""

    position: int
    job: EmbedJob
    examples: Examples
    fingerprint: str
    context: RunContext


def run_group(jobs: Sequence[EmbedJob], registry: Registry) -> list[MemberResult]:
    """Prepare every member (loading data, labelling U for MTEs), embed the rest together, store each result."""
    head = jobs[0]
    store = StudyFolder(head.out_dir).store()
    results: list[MemberResult | None] = [None] * len(jobs)
    pending: list[_Pending] = []
    for position, job in enumerate(jobs):
        context = job.context()  # one per member: what a model records while labelling U is that member's
        try:
            examples, fingerprint = job.prepare(registry, context, store)
        except Exception as exc:
            results[position] = (None, exc)
            continue
        if examples is None:
            results[position] = (JobOutcome(job.kind, job.ref.name, "reused", fingerprint), None)
        else:
            pending.append(_Pending(position, job, examples, fingerprint, context))
    method = registry.get("method", head.space.method).build(head.space.options)
    if len(pending) > 1 and callable(getattr(method, "embed_group", None)):
        computed = _embed_together(method, pending, registry, store)
    else:
        computed = [_embed_alone(item, registry, store) for item in pending]
    for item, result in zip(pending, computed, strict=True):
        results[item.position] = result
    assert all(result is not None for result in results), "every member has a result"
    return [result for result in results if result is not None]


def _embed_together(
    method: Any, pending: list[_Pending], registry: Registry, store: EmbeddingStore
) -> list[MemberResult]:
    """One ``embed_group`` call for every pending member; one at a time when that call fails."""
    space = pending[0].job.space
    group_context = pending[0].job.context()
    started = time.perf_counter()
    try:
        results = method.embed_group([item.examples for item in pending], space.surrogate, group_context)
        if len(results) != len(pending):
            raise RuntimeError(f"embed_group returned {len(results)} results for {len(pending)} subjects")
    except Exception as exc:
        log.warning(
            "training %d subjects together failed (%s: %s); embedding them one at a time",
            len(pending),
            type(exc).__name__,
            exc,
        )
        return [_embed_alone(item, registry, store) for item in pending]
    share = (time.perf_counter() - started) / len(pending)  # each member's share of the group's time
    computed: list[MemberResult] = []
    for item, result in zip(pending, results, strict=True):
        job = item.job
        item.context.details.update(group_context.details)
        item.context.record("group_size", len(pending))
        try:
            embedding = job.embed(item.examples, item.fingerprint, registry, item.context, result, share)
            computed.append((job.store_result(embedding, store, share), None))
        except Exception as exc:
            computed.append((None, exc))
    return computed


def _embed_alone(item: _Pending, registry: Registry, store: EmbeddingStore) -> MemberResult:
    """The member embedded by itself, as its single job would; an exception is the member's own failure."""
    job = item.job
    started = time.perf_counter()
    try:
        embedding = job.embed(item.examples, item.fingerprint, registry, item.context)
        return job.store_result(embedding, store, time.perf_counter() - started), None
    except Exception as exc:
        return None, exc
