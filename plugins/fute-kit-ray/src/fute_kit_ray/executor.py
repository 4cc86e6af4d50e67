"""Run a study's independent jobs as Ray tasks.

Each job (one DTE, or one MTE including the labelling of U by its model) is a picklable value that
writes its result into the study's store itself, so results land where a local run puts them. The
store (``--out``) and the cache folder must therefore be reachable from every worker under the same
path: a shared filesystem on a cluster, the local disk on one machine. Both are written atomically
and content-addressed, so workers never clash and a retried job reuses what a failed attempt
finished (the model's predictions on U, for instance).

With ``group_size > 1`` one task carries a group of jobs of the same space (``fute_kit.job_groups``): a method
with ``embed_group`` trains them at once on the task's GPU, and each member is still stored and reported as
its own job (a member's transient error is retried as a single job).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from fute_kit.plugin import FuteError, option

log = logging.getLogger("fute_kit")

# Passed to the workers so they load the same plugins, caches and offline settings as the driver.
FORWARDED_ENV_PREFIXES = ("FUTE_KIT_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "OPENAI_BASE_URL")
# Transient failures worth another attempt; bad input (FuteError) is not retried.
RETRIED_EXCEPTIONS = (RuntimeError, OSError, MemoryError, TimeoutError, ConnectionError)


class RayExecutorError(FuteError):
    """Ray could not be reached or started."""


def _run_job(job: Callable[[], Any]) -> Any:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    return job()


@functools.cache
def _remote_job() -> Any:
    import ray

    return ray.remote(_run_job)


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES) and "KEY" not in k}


@attrs.frozen
class RayExecutor:
    """Each embedding job (or group of jobs) is a Ray task with its own resource request; failures are retried."""

    name = "ray"

    address: str | None = option(
        None, help="cluster address (ray://host:10001 or host:port); default RAY_ADDRESS, else a local Ray"
    )
    num_cpus: float = option(1.0, help="CPUs per job")
    num_gpus: float = option(0.0, help="GPUs per job (fractions share a GPU)")
    memory_gb: float | None = option(None, help="memory reserved per job, in GiB")
    max_retries: int = option(2, help="extra attempts for a job that crashed or hit a transient error")
    local_num_cpus: int | None = option(None, help="CPUs of a local Ray started for this run (default: all)")
    shutdown: bool = option(True, help="stop a local Ray started for this run when the jobs are done")
    group_size: int = option(
        1,
        help="embedding jobs of one space per Ray task (a method with embed_group trains them at once on the "
        "task's GPU); num_cpus, num_gpus and memory_gb are then per group",
        validator=attrs.validators.ge(1),
    )

    def __attrs_post_init__(self) -> None:
        if self.num_cpus <= 0 or self.num_gpus < 0 or self.max_retries < 0:
            raise ValueError("num_cpus must be > 0, num_gpus and max_retries >= 0")

    def _connect(self) -> bool:
        """Connect to the cluster (or start a local one); True when this run started it."""
        import ray

        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS")
        env = {"env_vars": _forwarded_env()}
        if address and address != "auto":
            _check_reachable(address)
        try:
            if address:
                ray.init(address=address, runtime_env=env, log_to_driver=False)
                return False
            ray.init(num_cpus=self.local_num_cpus, runtime_env=env, log_to_driver=False, include_dashboard=False)
            return True
        except Exception as exc:
            where = address or "a local Ray instance"
            raise RayExecutorError(
                f"could not connect to {where}: {type(exc).__name__}: {exc}. Check the address "
                "(ray status on the head node) or unset RAY_ADDRESS to run a local Ray"
            ) from exc

    def run(
        self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        if not jobs:
            return
        started_here = self._connect()
        try:
            yield from self._run_tasks(jobs, names)
        finally:
            if started_here and self.shutdown:
                import ray

                ray.shutdown()

    def _run_tasks(
        self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]
    ) -> Iterator[tuple[int, Any, BaseException | None]]:
        """One Ray task per group of jobs; each member's result yielded as its group finishes."""
        import ray

        from fute_kit.plugin import grouped_tasks

        pending = {
            self._submit(task, indices, names): indices for indices, task in grouped_tasks(jobs, self.group_size)
        }
        log.info("submitted %d jobs as %d Ray tasks (%s)", len(jobs), len(pending), ray.cluster_resources())
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                indices = pending.pop(ref)
                for index, value, error in _collect(ref, indices, names):
                    if len(indices) > 1 and _is_transient(error) and self.max_retries:
                        # A member's transient error: that member alone gets the single job's retries.
                        pending[self._submit(jobs[index], (index,), names, retries=self.max_retries - 1)] = (index,)
                    else:
                        yield index, value, error

    def _submit(
        self, task: Callable[[], Any], indices: tuple[int, ...], names: Sequence[str], retries: int | None = None
    ) -> Any:
        """Submit one job, or one group of jobs, as a Ray task with this executor's resource request."""

        resources: dict[str, Any] = {
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "max_retries": self.max_retries if retries is None else retries,
            "retry_exceptions": list(RETRIED_EXCEPTIONS),
        }
        if self.memory_gb:
            resources["memory"] = int(self.memory_gb * 2**30)
        name = names[indices[0]] + (f" and {len(indices) - 1} more" if len(indices) > 1 else "")
        return _remote_job().options(name=f"fute:{name}", **resources).remote(task)


def _collect(ref: Any, indices: tuple[int, ...], names: Sequence[str]) -> list[tuple[int, Any, BaseException | None]]:
    """(index, result, error) of each job of a finished task; a task that failed as a whole fails every member."""
    import ray

    try:
        value = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        return [(index, None, _original(exc)) for index in indices]
    except ray.exceptions.RayError as exc:  # worker died, out of memory, cancelled...
        return [(i, None, RuntimeError(f"{names[i]}: {type(exc).__name__}: {exc}")) for i in indices]
    if len(indices) == 1:
        return [(indices[0], value, None)]
    return [(index, result, error) for index, (result, error) in zip(indices, value, strict=True)]


def _is_transient(error: BaseException | None) -> bool:
    return isinstance(error, RETRIED_EXCEPTIONS) and not isinstance(error, FuteError)


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a wrong address: ``ray.init`` itself waits minutes for a cluster that is not there."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayExecutorError(f"Ray address {address!r} is not host:port (or ray://host:port)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise RayExecutorError(
            f"could not connect to {address}: {exc}. Check the address (`ray status` on the head node) "
            "or unset RAY_ADDRESS to run a local Ray"
        ) from exc


def _original(error: BaseException) -> BaseException:
    """The exception the job raised, not Ray's wrapper (so messages read as in a local run)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
