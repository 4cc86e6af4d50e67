"""fute_kit plugin: the main job, ``fute demo``."""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    from fute_kit_demo.cli import demo

    cli.add_command(demo)
