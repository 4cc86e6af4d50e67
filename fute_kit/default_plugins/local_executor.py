"""The ``local`` executor: runs a study's jobs one after another in this process."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from fute_kit.hookspecs import hookimpl


@attrs.frozen
class LocalExecutor:
    """Run jobs in this process, in order; a failing job does not stop the others."""

    name = "local"

    def run(
        self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        for index, job in enumerate(jobs):
            try:
                yield index, job(), None
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                yield index, None, exc


@hookimpl
def register_executors(register: Any) -> None:
    register(LocalExecutor)
