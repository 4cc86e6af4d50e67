"""The ``fute`` command. Exit status: 0 success, 1 some jobs failed, 2 bad input."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from fute_kit.clitools import (
    OVERRIDE_HELP,
    STUDY_FOLDER_HELP,
    parse_settings,
    settings_option,
    study_folder_option,
)
from fute_kit.errors import FuteError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class FuteGroup(click.Group):
    """Loads plugin commands lazily (so ``fute --help`` stays fast) and turns errors into messages."""

    _loaded_for: object = None  # the registry whose plugin commands are added
    _plugin_commands: tuple[str, ...] = ()

    def _load_plugin_commands(self) -> None:
        from fute_kit.registry import get_registry

        registry = get_registry()
        if self._loaded_for is registry:
            return
        for name in self._plugin_commands:  # another registry (tests): drop the old plugins' commands
            self.commands.pop(name, None)
        before = set(self.commands)
        # One plugin's failing register_commands is recorded (shown by `fute plugins`), never breaks `fute`.
        registry.host.call_each("register_commands", lambda _plugin: {"cli": self})
        type(self)._plugin_commands = tuple(set(self.commands) - before)
        type(self)._loaded_for = registry

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FuteError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)


@click.group(cls=FuteGroup, context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.version_option(package_name="fute-kit")
def cli(verbose: bool) -> None:
    """fute: unified task embeddings for datasets and models (FUTE)."""
    from fute_kit.progress import log_to_console, quiet_library_bars

    log_to_console(logging.DEBUG if verbose else logging.INFO)  # each line on its own, never glued onto a bar
    quiet_library_bars()  # on a file or a pipe: no carriage-return bars from transformers either
    for noisy in ("httpx", "httpx2"):  # one INFO line per HTTP request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- fute plugins ------------------------------------------------------------------------------
@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """Installed plugins, what each registers, and load errors."""
    from fute_kit.components import KINDS
    from fute_kit.registry import get_registry

    registry = get_registry()
    cli._load_plugin_commands()  # so that a failing register_commands hook is listed below
    rows: dict[str, dict[str, Any]] = {}
    for name, info in registry.host.infos.items():
        rows[name] = {
            "name": name,
            "module": info.module,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "registers": {},
            "errors": [],
        }

    def row(plugin: str) -> dict[str, Any]:
        return rows.setdefault(plugin, {"name": plugin, "registers": {}, "errors": []})

    for kind in KINDS:
        for spec in registry.specs(kind):
            row(spec.plugin)["registers"].setdefault(kind, []).append(spec.name)

    def reporter(plugin: str) -> dict[str, Any]:  # the report_setup hook's callback: facts such as alias targets
        setup = row(plugin).setdefault("setup", {})
        return {"report": lambda topic, text: setup.__setitem__(str(topic), str(text))}

    registry.host.call_each("report_setup", reporter)
    for failure in registry.failures:
        row(failure.plugin)["errors"].append({"stage": failure.stage, "error": failure.error})
    if as_json:
        click.echo(json.dumps(list(rows.values()), indent=2))
        return
    for entry in rows.values():
        version = f" {entry.get('version')}" if entry.get("version") else ""
        click.secho(f"{entry['name']}{version}", bold=True)
        for kind, names in sorted(entry["registers"].items()):
            click.echo(f"  {kind}: {', '.join(names)}")
        for topic, text in entry.get("setup", {}).items():
            click.echo(f"  {topic}: {text}")
        for error in entry["errors"]:
            click.secho(f"  FAILED ({error['stage']}): {error['error']}", fg="red")


# -- fute run ------------------------------------------------------------------------------------
@cli.command()
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False, path_type=Path))
@study_folder_option("The study folder to write (created if missing; a rerun reuses what it holds).")
@settings_option("--set", "overrides", help=OVERRIDE_HELP)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def run(config_path: Path, out_dir: Path, overrides: tuple[str, ...], no_progress: bool) -> None:
    """Run a whole study: DTEs, MTEs, similarities and rankings."""
    from fute_kit.config import load_config
    from fute_kit.pipeline import run_study

    config = load_config(config_path, overrides=parse_settings(overrides, "--set"))
    result = run_study(config, out_dir, show_progress=not no_progress)
    _print_outcomes(result)
    if result.failures:
        sys.exit(1)


def _print_outcomes(result: Any) -> None:
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if outcome.status == "failed":
            click.secho(f"FAILED {outcome.kind}:{outcome.name}: {outcome.error}", fg="red", err=True)
    click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if result.similarity is not None:
        from fute_kit.study_folder import StudyFolder

        folder = StudyFolder(result.out_dir)
        click.echo(f"similarities: {folder.similarity_csv}")
        click.echo(f"rankings:     {folder.rankings_json}")


# -- fute embed ----------------------------------------------------------------------------------
@cli.command()
@click.argument("kind", type=click.Choice(["dataset", "model"]))
@click.argument("name")
@click.option("--source", required=True, help="Dataset or model source, e.g. files, builtin, hf.")
@settings_option("--set", "settings", help="A source option (repeatable).")
@click.option("--surrogate", default="minilm", show_default=True)
@click.option("--method", default="taskemb", show_default=True)
@settings_option("--option", "method_options", help="A method option.")
@settings_option(
    "--unlabeled",
    "unlabeled",
    help="U for model embeddings.",
    default=("source=builtin", "name=unlabeled"),
    show_default=True,
)
@click.option("--out", "out_dir", default="fute-out", show_default=True, type=click.Path(path_type=Path))
@click.option("--no-progress", is_flag=True)
def embed(
    kind: str,
    name: str,
    source: str,
    settings: tuple[str, ...],
    surrogate: str,
    method: str,
    method_options: tuple[str, ...],
    unlabeled: tuple[str, ...],
    out_dir: Path,
    no_progress: bool,
) -> None:
    """Embed one dataset or one model (stored under OUT/embeddings)."""
    from fute_kit.config import parse_config
    from fute_kit.pipeline import run_study

    entry = {"name": name, "source": source, **parse_settings(settings, "--set")}
    data: dict[str, Any] = {
        "space": {"surrogate": surrogate, "method": method, "options": parse_settings(method_options, "--option")},
        "datasets" if kind == "dataset" else "models": [entry],
    }
    if kind == "model":
        data["unlabeled"] = parse_settings(unlabeled, "--unlabeled")
    config = parse_config(data, path="command line")
    result = run_study(config, out_dir, show_progress=not no_progress)
    _print_outcomes(result)
    if result.failures:
        sys.exit(1)


# -- fute similarity -------------------------------------------------------------------------------
@cli.command()
@click.option("--out", "out_dir", default=None, type=click.Path(path_type=Path), metavar="DIR", help=STUDY_FOLDER_HELP)
@click.option("--store", "store_dir", default=None, type=click.Path(file_okay=False, path_type=Path), hidden=True)
@click.option("--space", "space_id", default=None, help="Space id (needed when the store holds several).")
@click.option("--metric", default=None, help="Metric name (default: the method's declared metric).")
@settings_option("--option", "metric_options")
@click.option("--csv", "csv_path", default=None, type=click.Path(dir_okay=False, path_type=Path), help="CSV file.")
def similarity(
    out_dir: Path | None,
    store_dir: Path | None,
    space_id: str | None,
    metric: str | None,
    metric_options: tuple[str, ...],
    csv_path: Path | None,
) -> None:
    """A similarity matrix over stored embeddings of one space."""
    from fute_kit.errors import DataError
    from fute_kit.similarity import similarity_matrix
    from fute_kit.study_folder import StudyFolder

    if store_dir is not None:  # the old spelling, kept one release: --store DIR [--out FILE.csv]
        old = "--store is the old spelling of --out (and --out FILE of --csv)"
        click.echo(f"note: {old}; it goes in the next release", err=True)
        out_dir, csv_path = store_dir, csv_path or out_dir
    if out_dir is None:
        raise click.UsageError("Missing option '--out' (the study folder).")
    store = StudyFolder(out_dir).readable_store()
    spaces = store.spaces()
    if space_id is None:
        if len(spaces) != 1:
            ids = ", ".join(f"{s.id} ({s.describe()})" for s in spaces) or "none"
            raise DataError(f"{store.root} holds {len(spaces)} spaces; choose one with --space: {ids}")
        space_id = spaces[0].id
    embeddings = store.load_all(space_id)
    if not embeddings:
        raise DataError(f"no embeddings of space {space_id!r} in {store.root}")
    matrix = similarity_matrix(embeddings, metric, parse_settings(metric_options, "--option"))
    if csv_path:
        matrix.write(csv_path)
        click.echo(f"wrote {csv_path}")
    else:
        click.echo(matrix.to_csv(), nl=False)


# -- fute store -----------------------------------------------------------------------------------
@cli.group()
def store() -> None:
    """Inspect an embedding store."""


@store.command("ls")
@study_folder_option(old_argument=True, default="fute-out")
@click.option("--json", "as_json", is_flag=True)
def store_ls(out_dir: Path, as_json: bool) -> None:
    """List stored embeddings: space, kind, subject, shape, time."""
    from fute_kit.study_folder import StudyFolder

    entries = StudyFolder(out_dir).readable_store().entries()
    if as_json:
        import attrs

        rows = [attrs.asdict(e) | {"path": str(e.path), "shape": list(e.shape)} for e in entries]
        click.echo(json.dumps(rows, indent=2))
        return
    if not entries:
        click.echo(f"no embeddings in {out_dir}")
        return
    click.echo(f"{'space':<13} {'kind':<8} {'subject':<32} {'shape':<12} created")
    for e in entries:
        shape = "x".join(map(str, e.shape))
        click.echo(f"{e.space_id:<13} {e.kind:<8} {e.subject:<32} {shape:<12} {e.created}")


from fute_kit.selection_cli import evaluate, measure, rank  # noqa: E402  (click commands, cheap to import)

cli.add_command(rank)
cli.add_command(evaluate)
cli.add_command(measure)


def main() -> None:
    cli(prog_name="fute")


if __name__ == "__main__":
    main()
