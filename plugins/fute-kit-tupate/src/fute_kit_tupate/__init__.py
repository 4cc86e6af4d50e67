"""fute_kit plugin: the ``tupate`` method (tuned parameters of a frozen surrogate as the task embedding).

The method class is imported inside the hook so that ``import fute_kit`` never pulls in torch.
"""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl


@hookimpl
def register_methods(register: Any) -> None:
    from fute_kit_tupate.method import TuPaTE

    register(TuPaTE)
