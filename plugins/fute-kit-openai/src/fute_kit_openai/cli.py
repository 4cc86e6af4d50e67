"""``fute cache``: inspect or clear the response cache of the ``openai`` model source."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _default_path() -> Path:
    from fute_kit.components import default_cache_dir

    return default_cache_dir() / "openai" / "responses.sqlite"


_path_option = click.option(
    "--path",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Cache file (default: <FUTE_KIT_CACHE or ~/.cache/fute_kit>/openai/responses.sqlite).",
)


@click.group()
def cache() -> None:
    """The response cache of LLM endpoints (openai model source)."""


@cache.command("info")
@_path_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def cache_info(path: Path | None, as_json: bool) -> None:
    """Size, rows, tokens and the hit rate of recorded runs."""
    from fute_kit_openai.cache import ResponseCache

    path = path or _default_path()
    if not path.exists():
        click.echo(json.dumps({"path": str(path), "rows": 0}) if as_json else f"no cache at {path}")
        return
    with ResponseCache(path) as store:
        info = store.info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    rate = "n/a" if info["hit_rate"] is None else f"{100 * info['hit_rate']:.1f}%"
    click.echo(f"cache:      {info['path']}")
    click.echo(f"size:       {info['bytes'] / 1e6:.2f} MB")
    click.echo(
        f"answers:    {info['rows']} ({info['prompt_tokens']} prompt + {info['completion_tokens']} completion tokens)"
    )
    for model, rows in info["models"].items():
        click.echo(f"  {model}: {rows}")
    click.echo(
        f"runs:       {info['runs']} ({info['hits']} of {info['lookups']} look-ups answered by the cache: "
        f"hit rate {rate})"
    )
    click.echo(f"batches:    {info['batches']}")


@cache.command("clear")
@_path_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def cache_clear(path: Path | None, yes: bool) -> None:
    """Delete every cached answer (paid answers are gone for good)."""
    from fute_kit_openai.cache import ResponseCache

    path = path or _default_path()
    if not path.exists():
        click.echo(f"no cache at {path}")
        return
    if not yes:
        click.confirm(f"delete every cached answer in {path}?", abort=True)
    with ResponseCache(path) as store:
        removed = store.clear()
    click.echo(f"removed {removed} answers from {path}")
