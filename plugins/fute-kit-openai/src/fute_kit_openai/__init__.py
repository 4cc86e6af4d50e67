"""fute_kit plugin: the ``openai`` model source (an LLM behind any OpenAI-compatible endpoint + a prompt).

Modules are imported inside the hooks so that ``import fute_kit`` and ``fute --help`` stay fast.
"""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl
from fute_kit_openai.local_server import start_local_server  # stdlib only until a server starts

__all__ = ["start_local_server"]  # what other plugins may use (fute demo --start-server)


@hookimpl
def register_model_sources(register: Any) -> None:
    from fute_kit_openai.source import OpenAIModel

    register(OpenAIModel)


@hookimpl
def register_commands(cli: Any) -> None:
    from fute_kit_openai.cli import cache, llm

    cli.add_command(cache)
    cli.add_command(llm)
