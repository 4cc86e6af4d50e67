"""The ``fute rank``, ``fute evaluate`` and ``fute measure`` commands.

Wired into the ``fute`` group by ``fute_kit.cli`` (``cli.add_command``); heavy work is imported
inside the commands so ``fute --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from fute_kit.clitools import OVERRIDE_HELP, parse_settings, settings_option, study_folder_option
from fute_kit.prompts import CANDIDATE_SETS


# -- fute rank ------------------------------------------------------------------------------------
@click.command()
@click.argument("target")
@study_folder_option(
    "A finished study folder (its own metric is used by default), or a bare embeddings folder "
    "(the method's declared metric).",
    old_flags=("--out-dir", "--store"),
)
@click.option("--space", "space_id", default=None, help="Space id (needed when the store holds several).")
@click.option(
    "--candidates",
    type=click.Choice(CANDIDATE_SETS),
    default="all",
    show_default=True,
    help="What to rank: datasets, models, prompts (models named LLM/PROMPT) or all.",
)
@click.option("--llm", default=None, help="Only this LLM's prompts (models named LLM/PROMPT): a prompt pool.")
@click.option("--metric", default=None, help="Metric name (default: the study's, else the method's declared one).")
@settings_option("--option", "metric_options", help="A metric option.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the first K.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rank(
    target: str,
    out_dir: Path,
    space_id: str | None,
    candidates: str,
    llm: str | None,
    metric: str | None,
    metric_options: tuple[str, ...],
    top: int | None,
    as_json: bool,
) -> None:
    """Rank stored embeddings by similarity to TARGET (dataset:NAME, model:NAME or a bare name).

    Prompt selection without labels: fute rank DATASET --llm LLM ranks that LLM's prompts.
    """
    from fute_kit.selection import rank_study

    if llm is not None:
        if candidates not in ("prompts", "all"):
            raise click.UsageError(f"--llm picks prompts; it cannot be combined with --candidates {candidates}")
        candidates = f"prompts:{llm}"

    ranking = rank_study(
        target,
        out_dir,
        candidates,
        space_id=space_id,
        metric=metric,
        metric_options=parse_settings(metric_options, "--option"),
        top=top,
    )
    if as_json:
        click.echo(json.dumps(ranking.to_dict(), indent=2))
        return
    options = ", ".join(f"{k}={v!r}" for k, v in sorted(ranking.metric_options.items()))
    metric_text = f"{ranking.metric}({options})" if options else ranking.metric
    click.echo(f"{candidates} closest to {ranking.target} ({metric_text}; {ranking.space.describe()})")
    click.echo(ranking.table())


# -- fute evaluate --------------------------------------------------------------------------------
@click.command()
@study_folder_option("A finished study folder (what `fute run --out` wrote).", old_argument=True, exists=True)
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV with columns target,candidate,score (transfer gains, or each prompt's accuracy).",
)
@click.option("--k", type=click.IntRange(min=1), default=3, show_default=True, help="Cut-off of NDCG@k and regret@k.")
@click.option(
    "--relevance",
    type=click.Choice(["minmax", "raw"]),
    default="minmax",
    show_default=True,
    help="NDCG relevance: true scores min-max scaled per target to [0, 1], or as given (non-negative).",
)
@click.option(
    "--textemb",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="A TextEmb study folder: adds the baseline ranking by its similarities.",
)
@click.option("--space", "space_id", default=None, help="Space id (needed when the store holds several).")
@click.option(
    "--pool",
    "pooled",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Another folder of the same study (another seed), repeatable: targets of every folder are pooled, so "
    "means and intervals are over targets x seeds (needs --results).",
)
@click.option(
    "--results",
    "results_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write evaluation.json and baselines.csv here (the pooled ones with --pool, which needs it).",
)
@click.option(
    "--spell-sample",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Texts of U each prompt is filled with for SPELL's perplexity (scored once by the LLM, then cached).",
)
@click.option(
    "--spell-model",
    default=None,
    metavar="LLM",
    help="Where a prompt's own source cannot score prompt text (openai on the local server), score it with "
    "hf-prompted and this LLM (a fetched local model name, alias or folder), the same prompt, labels and examples.",
)
@click.option("--no-spell", is_flag=True, help="Leave SPELL out (it runs the LLM on prompts not yet scored).")
@click.option(
    "--label-free",
    "label_free_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Label-free scores on each target's own inputs (what fute measure --label-free wrote): ranked as the "
    "baselines NAME@target beside those on U.",
)
@click.option(
    "--truth-column",
    default="score",
    show_default=True,
    help="The truth file's column to rank by (fute transfer's accuracy_after: regret against the best source).",
)
@click.option(
    "--min-candidates",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Leave out targets with fewer candidates in the truth (a transfer matrix still being measured).",
)
@click.option(
    "--skip-absent-targets",
    is_flag=True,
    help="Judge only the truth's targets each folder embedded (a study per target); the rest are named in the "
    "notes. Without it a target the study lacks is an error.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of markdown tables.")
def evaluate(
    out_dir: Path,
    truth_path: Path,
    k: int,
    relevance: str,
    textemb: Path | None,
    space_id: str | None,
    pooled: tuple[Path, ...],
    results_dir: Path | None,
    spell_sample: int,
    spell_model: str | None,
    no_spell: bool,
    label_free_path: Path | None,
    truth_column: str,
    min_candidates: int,
    skip_absent_targets: bool,
    as_json: bool,
) -> None:
    """Compare a study's rankings with true scores (NDCG, regret@k, Spearman, top-1) and baselines.

    Writes OUT/evaluation.json and OUT/baselines.csv (each baseline's score of every candidate); with --pool, each
    folder's own and the pooled ones in --results.
    """
    from fute_kit.evaluation import evaluate_study, pool_evaluations, write_baselines, write_evaluation
    from fute_kit.prompt_perplexity import SpellFallback
    from fute_kit.study_folder import StudyFolder

    if pooled and results_dir is None:
        raise click.UsageError("--pool needs --results DIR: where the pooled evaluation.json and baselines.csv go")
    evaluations = []
    for folder in (out_dir, *pooled):
        one = evaluate_study(
            folder,
            truth_path,
            k=k,
            relevance=relevance,
            textemb=textemb,
            space_id=space_id,
            spell_sample=None if no_spell else spell_sample,
            spell_fallback=SpellFallback("hf-prompted", {"path": spell_model}) if spell_model else None,
            target_label_free=label_free_path,
            truth_column=truth_column,
            min_candidates=min_candidates,
            skip_absent_targets=skip_absent_targets,
        )
        write_evaluation(one, StudyFolder(folder).evaluation_json)
        write_baselines(one, StudyFolder(folder).baselines_csv)
        evaluations.append(one)
    evaluation = pool_evaluations(evaluations)
    written = StudyFolder(results_dir or out_dir)
    if pooled or results_dir is not None:
        written.path.mkdir(parents=True, exist_ok=True)
        write_evaluation(evaluation, written.evaluation_json)
        write_baselines(evaluation, written.baselines_csv)
    if as_json:
        click.echo(json.dumps(evaluation.to_dict(), indent=2))
    else:
        click.echo(evaluation.markdown(), nl=False)
        click.echo(f"\nwrote {written.evaluation_json} and {written.baselines_csv}", err=True)


# -- fute measure ---------------------------------------------------------------------------------
@click.command()
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dataset", required=True, help="Name of a labelled [[datasets]] entry of the configuration.")
@click.option("--split", default=None, help="Override the dataset source's split (e.g. test); default: as configured.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N examples (a reproducible sample).")
@click.option("--model", "models", multiple=True, help="Only this [[models]] entry (repeatable); default: all.")
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Truth CSV to write."
)
@click.option("--append", is_flag=True, help="Keep the file's rows for other targets and candidates.")
@click.option(
    "--label-free",
    "label_free_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write each model's label-free scores on the dataset's own inputs (labels unused) to this CSV "
    "(target,candidate,baseline,score; for fute evaluate --label-free). Measure a prompt pool in one call.",
)
@settings_option("--set", "overrides", help=OVERRIDE_HELP)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
def measure(
    config_path: Path,
    dataset: str,
    split: str | None,
    limit: int | None,
    models: tuple[str, ...],
    out_path: Path,
    append: bool,
    label_free_path: Path | None,
    overrides: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Measure the truth: each configured model's (each prompt's) accuracy on a labelled dataset.

    Writes target,candidate,score rows for ``fute evaluate``. This runs the models.
    """
    from fute_kit.accuracy import measure as measure_models
    from fute_kit.components import RunContext
    from fute_kit.config import load_config
    from fute_kit.label_free import write_label_free
    from fute_kit.truth import write_truth

    config = load_config(config_path, overrides=parse_settings(overrides, "--set"))
    measured = measure_models(
        config,
        dataset,
        split=split,
        limit=limit,
        models=models,
        context=RunContext(show_progress=not no_progress),
    )
    rows = measured.accuracy
    write_truth(rows, out_path, append=append)
    if label_free_path is not None:
        write_label_free(measured.label_free, label_free_path, append=append)
        click.echo(f"wrote {label_free_path}")
    width = max(len(name) for _, name, _ in rows)
    click.echo(f"accuracy on {dataset}" + (f" ({split})" if split else ""))
    for _, name, score in sorted(rows, key=lambda r: -r[2]):
        click.echo(f"  {name:<{width}}  {score:.4f}")
    click.echo(f"wrote {out_path}")
