"""``fute finetune``: fine-tune a small classifier on a dataset source (a model for a study to embed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _settings(values: tuple[str, ...], flag: str) -> dict[str, Any]:
    from fute_kit.clitools import parse_settings

    return parse_settings(values, flag)


@click.command("finetune")
@click.argument("dataset", required=False, metavar="[SOURCE:NAME]")
@click.option("--source", default=None, help="Dataset source (e.g. files, hf-datasets) configured with --set.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="An option of the dataset source.")
@click.option(
    "--eval",
    "eval_settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Options that change the training source into the evaluation one (default for builtin: split=test).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder.")
@click.option("--base", default="minilm", show_default=True, help="Base model: alias, folder or hub id.")
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=128, show_default=True, type=click.IntRange(min=2))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True)
@click.option("--no-progress", is_flag=True)
def finetune_command(
    dataset: str | None,
    source: str | None,
    settings: tuple[str, ...],
    eval_settings: tuple[str, ...],
    out_dir: Path,
    base: str,
    epochs: int,
    lr: float,
    batch_size: int,
    max_length: int,
    seed: int,
    device: str,
    no_progress: bool,
) -> None:
    """Fine-tune BASE into a sequence classifier on a dataset; the folder can then be embedded with source 'hf'.

    \b
    fute finetune builtin:bbc-topic --out models/bbc
    fute finetune --source files --set path=reviews.csv --set label=stars --out models/reviews
    """
    from fute_kit.components import RunContext
    from fute_kit.errors import FuteError
    from fute_kit.registry import get_registry
    from fute_kit_hf.finetune import finetune_classifier, read_finetune_info

    options = _settings(settings, "--set")
    if dataset:
        if source or ":" not in dataset:
            raise click.UsageError("give either SOURCE:NAME (e.g. builtin:bbc-topic) or --source with --set options")
        source, name = dataset.split(":", 1)
        if source != "builtin":
            raise click.UsageError(f"SOURCE:NAME works for builtin data; use --source {source} --set ... instead")
        options.setdefault("dataset", name)
    if not source:
        raise click.UsageError("name a dataset: SOURCE:NAME (builtin:bbc-topic) or --source files --set path=...")
    registry = get_registry()
    eval_options = _settings(eval_settings, "--eval")
    if source == "builtin" and not eval_options:
        eval_options = {"split": "test"}
    context = RunContext(show_progress=not no_progress)
    train = registry.build("dataset_source", source, options).load(context)
    evaluation = None
    if eval_options:
        try:
            evaluation = registry.build("dataset_source", source, {**options, **eval_options}).load(context)
        except FuteError as exc:
            raise FuteError(f"evaluation data ({eval_options}): {exc}") from exc
    folder = finetune_classifier(
        train,
        out_dir,
        base,
        eval_examples=evaluation,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
        seed=seed,
        device=device,
        context=context,
    )
    info = read_finetune_info(folder) or {}
    metrics = info.get("metrics", {})
    click.echo(f"model: {folder}")
    if "eval_accuracy" in metrics:
        click.echo(f"accuracy on {metrics['eval_examples']} evaluation examples: {metrics['eval_accuracy']:.3f}")
    click.echo(f'embed it with: source = "hf", path = "{folder}"')
