"""Run a study's independent jobs as Ray tasks.

Each job (one DTE, or one MTE including the labelling of U by its model) is a picklable value that
writes its result into the study's store itself, so results land where a local run puts them. The
store (``--out``) and the cache folder must therefore be reachable from every worker under the same
path: a shared filesystem on a cluster, the local disk on one machine. Both are written atomically
and content-addressed, so workers never clash and a retried job reuses what a failed attempt
finished (the model's predictions on U, for instance).
"""

from __future__ import annotations

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


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES) and "KEY" not in k}


@attrs.frozen
class RayExecutor:
    """Each embedding job is a Ray task with its own resource request; failures are retried, then reported."""

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
        import ray

        started_here = self._connect()
        try:
            remote = ray.remote(_run_job)
            resources = {
                "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus,
                "max_retries": self.max_retries,
                "retry_exceptions": list(RETRIED_EXCEPTIONS),
            }
            if self.memory_gb:
                resources["memory"] = int(self.memory_gb * 2**30)
            pending = {
                remote.options(name=f"fute:{name}", **resources).remote(job): i
                for i, (job, name) in enumerate(zip(jobs, names, strict=True))
            }
            log.info("submitted %d jobs to Ray (%s)", len(pending), ray.cluster_resources())
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        yield index, ray.get(ref), None
                    except ray.exceptions.RayTaskError as exc:
                        yield index, None, _original(exc)
                    except ray.exceptions.RayError as exc:  # worker died, out of memory, cancelled...
                        yield index, None, RuntimeError(f"{names[index]}: {type(exc).__name__}: {exc}")
        finally:
            if started_here and self.shutdown:
                ray.shutdown()


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
