"""Helpers shared by the ``fute`` sub-commands of the core and of plugins."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
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


def settings_option(
    flag: str, name: str, help: str | None = None, **extra: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A repeatable ``KEY=VALUE`` option (read with ``parse_settings``), the form of every options flag."""
    return click.option(flag, name, multiple=True, metavar="KEY=VALUE", help=help, **extra)


OVERRIDE_HELP = (
    "Set a configuration key for this run, e.g. space.method=tupate, unlabeled.limit=100, "
    "models.NAME.concurrency=2 (repeatable; the file is not changed)."
)


# -- the study folder on the command line -----------------------------------------------------------
STUDY_FOLDER_HELP = "The study folder (what `fute run --out` wrote), or a bare embeddings folder."


class _UnlistedArgument(click.Argument):
    """A positional argument kept from an old spelling: accepted, left out of the usage line."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def study_folder_option(
    help: str = STUDY_FOLDER_HELP,
    *,
    old_flags: Sequence[str] = (),
    old_argument: bool = False,
    default: str | None = None,
    exists: bool = False,
    file_okay: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--out DIR``, the one spelling of the study folder, passed to the command as ``out_dir`` (a Path).

    ``old_flags`` (``--out-dir``, ``--store``) and ``old_argument`` (a positional OUT) are the spellings it
    replaces: hidden from ``--help``, still accepted for one release with a note on stderr.
    """
    folder = click.Path(file_okay=file_okay, exists=exists, path_type=Path)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def with_study_folder(*args: Any, **kwargs: Any) -> Any:
            given = {"--out": kwargs.pop("out_dir")}
            given |= {flag: kwargs.pop(_old_name(flag)) for flag in old_flags}
            if old_argument:
                given["OUT"] = kwargs.pop("old_out_argument")
            chosen = {name: value for name, value in given.items() if value is not None}
            if len(chosen) > 1:
                raise click.UsageError(f"give the study folder once, with --out (got {' and '.join(chosen)})")
            for name in chosen.keys() - {"--out"}:
                what = "a positional OUT" if name == "OUT" else name
                click.echo(f"note: {what} is the old spelling of --out; it goes in the next release", err=True)
            value = next(iter(chosen.values()), default)
            if value is None:
                raise click.UsageError("Missing option '--out' (the study folder).")
            return command(*args, out_dir=Path(value), **kwargs)

        decorated: Callable[..., Any] = with_study_folder
        if old_argument:
            decorated = click.argument("old_out_argument", required=False, type=folder, cls=_UnlistedArgument)(
                decorated
            )
        for flag in old_flags:
            decorated = click.option(flag, _old_name(flag), type=folder, default=None, hidden=True)(decorated)
        shown_default = f"  [default: {default}]" if default is not None else ""
        option = click.option("--out", "out_dir", type=folder, default=None, metavar="DIR", help=help + shown_default)
        return option(decorated)

    return decorate


def _old_name(flag: str) -> str:
    return "old_" + flag.lstrip("-").replace("-", "_")
