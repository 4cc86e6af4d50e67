"""The ``local`` executor: runs a study's jobs one after another in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from fute_kit.hookspecs import hookimpl
from fute_kit.options import option


@attrs.frozen
class LocalExecutor:
    """Run jobs in this process, in order; a failing job does not stop the others."""

    name = "local"

    group_size: int = option(
        1,
        help="embedding jobs of one space run together (a method with embed_group trains them at once, "
        "e.g. taskemb on a GPU); 1: one at a time",
        validator=attrs.validators.ge(1),
    )

    def run(
        self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        from fute_kit.job_groups import grouped_tasks

        for indices, task in grouped_tasks(jobs, self.group_size):
            try:
                results = task() if len(indices) > 1 else [(task(), None)]
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                results = [(None, exc)] * len(indices)
            for index, (value, error) in zip(indices, results, strict=True):
                yield index, value, error


@hookimpl
def register_executors(register: Any) -> None:
    register(LocalExecutor)
