"""Helpers shared by the ``fute`` sub-commands of the core and of plugins."""

from __future__ import annotations

import tomllib
from typing import Any

import click


def parse_settings(values: tuple[str, ...], flag: str) -> dict[str, Any]:
    """``key=value`` pairs; values are read as TOML literals (numbers, lists, tables) or plain text."""
    settings: dict[str, Any] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint=flag)
        key, raw = item.split("=", 1)
        try:
            settings[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            settings[key.strip()] = raw
    return settings
