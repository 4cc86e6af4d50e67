"""fute_kit plugin: the ``ray`` executor (each embedding job becomes a Ray task)."""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl


@hookimpl
def register_executors(register: Any) -> None:
    from fute_kit_ray.executor import RayExecutor

    register(RayExecutor)
