"""``fute finetune``: fine-tune a small classifier on a dataset source (a model for a study to embed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fute_kit.plugin import settings_option


def _settings(values: tuple[str, ...], flag: str) -> dict[str, Any]:
    from fute_kit.plugin import parse_settings

    return parse_settings(values, flag)


@click.command("finetune")
@click.argument("dataset", required=False, metavar="[SOURCE:NAME]")
@click.option("--source", default=None, help="Dataset source (e.g. files, hf-datasets) configured with --set.")
@settings_option("--set", "settings", help="An option of the dataset source.")
@settings_option(
    "--eval",
    "eval_settings",
    help="Options that change the training source into the evaluation one (default for builtin: split=test).",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Model folder.")
@click.option("--base", default="minilm", show_default=True, help="Base model: alias, folder or hub id.")
@click.option("--epochs", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=128, show_default=True, type=click.IntRange(min=2))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option(
    "--precision",
    default="fp32",
    show_default=True,
    type=click.Choice(["fp32", "bf16", "auto"]),
    help="auto: bfloat16 autocast where the device has it natively.",
)
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
    precision: str,
    device: str,
    no_progress: bool,
) -> None:
    """Fine-tune BASE into a sequence classifier on a dataset; the folder can then be embedded with source 'hf'.

    \b
    fute finetune builtin:bbc-topic --out models/bbc
    fute finetune --source files --set path=reviews.csv --set label=stars --out models/reviews
    """
    from fute_kit.plugin import FuteError, RunContext, get_registry
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
        precision=precision,
        device=device,
        context=context,
    )
    info = read_finetune_info(folder) or {}
    metrics = info.get("metrics", {})
    click.echo(f"model: {folder}")
    if "eval_accuracy" in metrics:
        click.echo(f"accuracy on {metrics['eval_examples']} evaluation examples: {metrics['eval_accuracy']:.3f}")
    click.echo(f'embed it with: source = "hf", path = "{folder}"')


@click.command("transfer")
@click.argument("datasets", nargs=-1, metavar="[NAME]...")
@click.option("--zoo", is_flag=True, help="All labelled builtin datasets (the task zoo).")
@click.option(
    "--study",
    "study_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take the datasets from this study TOML's [[datasets]] (each with a 'split'; the test split is 'test').",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Results.")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the fine-tuning runs, reused across calls  [default: OUT/runs]",
)
@click.option("--targets", multiple=True, metavar="NAME[,NAME]", help="Only these targets (default: every dataset).")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(min=1), help="Seeds 0..N-1 per pair.")
@click.option("--base", default="minilm", show_default=True, help="Base model: alias, folder or hub id.")
@click.option("--source-size", default=1000, show_default=True, type=click.IntRange(min=0), help="0 = all.")
@click.option("--target-size", default=200, show_default=True, type=click.IntRange(min=2))
@click.option("--test-size", default=400, show_default=True, type=click.IntRange(min=2))
@click.option("--source-epochs", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--target-epochs", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--max-length", default=128, show_default=True, type=click.IntRange(min=2))
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--threads",
    default=0,
    type=click.IntRange(min=0),
    help="torch CPU threads (0 = torch's default); 1 can be much faster on a busy shared machine.",
)
@click.option(
    "--write-study",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Instead of measuring: fine-tune the source checkpoints and write a source-ranking study TOML here.",
)
@click.option("--method", default="taskemb", show_default=True, help="Method of the --write-study study.")
@click.option("--progress", is_flag=True, help="Show a progress bar per fine-tuning (one line per run otherwise).")
def transfer_command(
    datasets: tuple[str, ...],
    zoo: bool,
    study_path: Path | None,
    out_dir: Path,
    cache: Path | None,
    targets: tuple[str, ...],
    seeds: int,
    base: str,
    source_size: int,
    target_size: int,
    test_size: int,
    source_epochs: int,
    target_epochs: int,
    lr: float,
    batch_size: int,
    max_length: int,
    device: str,
    threads: int,
    write_study: Path | None,
    method: str,
    progress: bool,
) -> None:
    """Measure source -> target transfer gains (the truth for `fute evaluate --truth OUT/truth.csv`).

    For each target and every other dataset as source: fine-tune BASE on the source, then on TARGET-SIZE
    target examples from that checkpoint with a fresh head; gain = target test accuracy minus the same recipe
    on the target alone, mean and sd over the seeds. Runs are cached in --cache and reused; rows are written
    to OUT/truth.csv as they finish, so an interrupted run resumes where it stopped.

    \b
    fute transfer --zoo --out results/transfer
    fute transfer rt-sentiment bbc-topic rt-subjectivity --seeds 1 --out /tmp/t
    fute transfer --zoo --out results/transfer --write-study study.toml
    """
    import time

    from fute_kit.plugin import RunContext
    from fute_kit_hf import transfer

    chosen = [bool(datasets), zoo, study_path is not None]
    if sum(chosen) != 1:
        raise click.UsageError("name the datasets one way: NAME... (builtin sets), --zoo, or --study STUDY.toml")
    if study_path is not None:
        found = transfer.study_datasets(study_path)
    else:
        found = transfer.builtin_datasets(transfer.zoo_names() if zoo else list(datasets))
    recipe = transfer.TransferRecipe(
        base=base,
        source_size=source_size or None,
        target_size=target_size,
        test_size=test_size,
        source_epochs=source_epochs,
        target_epochs=target_epochs,
        lr=lr,
        batch_size=batch_size,
        max_length=max_length,
    )

    def report(line: str) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} {line}", err=True)

    how = {
        "device": device,
        "threads": threads or None,
        "context": RunContext(show_progress=progress),
        "report": report,
    }
    if write_study is not None:
        runs = cache or out_dir / "runs"
        path = transfer.write_source_study(found, write_study, recipe, cache=runs, method=method, **how)
        click.echo(f"wrote {path}: run it with `fute run {path} --out DIR`")
        return
    wanted = [name.strip() for value in targets for name in value.split(",") if name.strip()]
    truth = transfer.measure_transfer(found, out_dir, recipe, seeds=seeds, targets=wanted or None, cache=cache, **how)
    click.echo(f"truth: {truth}\nevaluate a study with: fute evaluate --out STUDY_OUT --truth {truth}")
