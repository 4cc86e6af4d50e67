"""fute_kit plugin: the ``taskemb`` method (TaskEmb-style Fisher information of layer outputs).

The method class is imported inside the hook so that ``import fute_kit`` never pulls in torch.
"""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl


@hookimpl
def register_methods(register: Any) -> None:
    from fute_kit_taskemb.method import TaskEmb

    register(TaskEmb)
