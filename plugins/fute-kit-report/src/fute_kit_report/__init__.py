"""fute_kit plugin: a self-contained HTML report after every study, and the ``fute report`` command.

matplotlib is imported only while figures are drawn, so loading this plugin costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fute_kit.plugin import hookimpl, study_folder_option

__all__ = ["build_report", "report_command", "study_finished"]


def build_report(out_dir: str | Path, **kwargs: Any) -> Any:
    """Write OUT/report.html and OUT/figures/*.png for a finished study (see ``report.build_report``)."""
    from fute_kit_report.report import build_report as build

    return build(out_dir, **kwargs)


@hookimpl
def study_finished(out_dir: Any, config: Any, result: Any) -> None:
    """After ``fute run``: write the report beside the study's outputs."""
    import logging

    built = build_report(out_dir)
    logging.getLogger("fute_kit").info("report: %s", built.html)


@click.command("report")
@study_folder_option("A finished study folder (what `fute run --out` wrote).", old_argument=True, exists=True)
@click.option(
    "--map",
    "map_method",
    type=click.Choice(["pca", "mds", "tsne"]),
    default="pca",
    show_default=True,
    help="How to place embeddings in 2-D (tsne needs scikit-learn).",
)
@click.option("--space", "space_id", default=None, help="Space id (needed when the store holds several).")
def report_command(out_dir: Path, map_method: str, space_id: str | None) -> None:
    """Rebuild OUT/report.html (and OUT/figures/*.png) from a finished study folder."""
    built = build_report(out_dir, map_method=map_method, space_id=space_id)
    click.echo(f"wrote {built.html}")
    for path in built.figures:
        click.echo(f"      {path}")


@hookimpl
def register_commands(cli: Any) -> None:
    cli.add_command(report_command)
