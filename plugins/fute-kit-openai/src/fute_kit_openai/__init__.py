"""fute_kit plugin: the ``openai`` model source (an LLM behind any OpenAI-compatible endpoint + a prompt).

Modules are imported inside the hooks so that ``import fute_kit`` and ``fute --help`` stay fast.
"""

from __future__ import annotations

from typing import Any

from fute_kit import hookimpl


@hookimpl
def register_model_sources(register: Any) -> None:
    from fute_kit_openai.source import OpenAIModel

    register(OpenAIModel)


@hookimpl
def register_commands(cli: Any) -> None:
    from fute_kit_openai.cli import cache, llm

    cli.add_command(cache)
    cli.add_command(llm)
