"""``fute demo``: the main job, offline, on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--out", "out_dir", default="fute-demo", show_default=True, type=click.Path(file_okay=False, path_type=Path)
)
@click.option("--server-url", default=None, help="An OpenAI-compatible endpoint serving the LLM (else transformers).")
@click.option("--server-model", default="smollm2", show_default=True, help="The model name the endpoint knows.")
@click.option("--start-server", is_flag=True, help="Start the local llama.cpp server (fute-kit-openai) for the run.")
@click.option(
    "--size",
    type=click.Choice(["quick", "headline"]),
    default="quick",
    show_default=True,
    help="quick: about 10 minutes on 2 CPU cores; headline: docs/results.md §1's sizes (400 texts of U, "
    "400 examples per dataset; a GPU's job, about an hour on 2 CPU cores).",
)
@click.option("--no-controls", is_flag=True, help="Skip the shuffled-labels and random-head controls.")
@click.option("--method", default="taskemb", show_default=True, help="Embedding method (taskemb, tupate, textemb).")
@click.option("--no-progress", is_flag=True)
def demo(
    out_dir: Path,
    server_url: str | None,
    server_model: str,
    start_server: bool,
    size: str,
    no_controls: bool,
    method: str,
    no_progress: bool,
) -> None:
    """Datasets, fine-tuned classifiers and LLM prompts in one space; rankings, evaluation, report."""
    import contextlib

    from fute_kit_demo.demo import EPOCHS, SIZES, DemoPlan, run_demo

    with contextlib.ExitStack() as stack:
        if start_server:
            from fute_kit_openai import start_local_server

            server = stack.enter_context(start_local_server())
            server_url, server_model = server.base_url, server.alias
            click.echo(f"local llama.cpp server at {server_url}")
        options = {"epochs": EPOCHS[size], "seed": 0} if method == "taskemb" else {"seed": 0}
        plan = DemoPlan(
            out_dir,
            **SIZES[size],
            controls=not no_controls,
            method=method,
            method_options=options,
            server_url=server_url,
            server_model=server_model,
        )
        report = run_demo(plan, echo=click.echo, show_progress=not no_progress)
    click.secho(f"report: {report.resolve()}", bold=True)
