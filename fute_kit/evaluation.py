"""Judging a study's rankings against measured truth, with the baselines the field compares against.

For each target of the truth (``fute_kit.truth``) the candidates are ranked by embedding similarity
(the study's ``similarity.csv``) and scored with ``fute_kit.ranking_metrics``, then averaged over targets.

Baselines: ``random`` (the exact expectation over every order); ``textemb`` (another study's
similarities, such as a TextEmb space); ``size`` (more examples first: the truth file's ``source_examples``
column where it has one, else the embeddings' provenance ``n_examples``); for models with cached predictions
on U, the label-free prompt-selection scores of ``fute_kit.label_free`` (MI, GE, LE, MDL, ZPS); and, for
prompts whose model source can score prompt text, SPELL's perplexity (``fute_kit.prompt_perplexity``); and
the same label-free scores on each target's own inputs where ``fute measure --label-free`` wrote them
(``NAME@target``: the setting of the papers that propose them, where U is text of another kind).

Each baseline's score of every candidate is written as ``baselines.csv`` (``target,candidate,baseline,score``);
:func:`pool_evaluations` joins the evaluations of several study folders (seeds) so that the means and the
bootstrap intervals are over targets x seeds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_text
from fute_kit.errors import DataError
from fute_kit.label_free import LABEL_FREE, label_free_scores, read_label_free, write_score_rows
from fute_kit.prompt_perplexity import SPELL, SpellFallback, spell_scores
from fute_kit.prompts import split_label
from fute_kit.ranking_metrics import RankingScores, Relevance, bootstrap_interval, random_scores, ranking_scores
from fute_kit.selection import Study, UnknownSubjectError, open_study, resolve_label
from fute_kit.similarity import SimilarityMatrix
from fute_kit.study_folder import StudyFolder
from fute_kit.truth import read_truth, truth_columns

EMBEDDING = "embedding"
# The baselines that score each candidate (random has no score: it is the exact expectation over every order).
SCORED_BASELINES = ("textemb", "size", *LABEL_FREE, SPELL)
SOURCE_EXAMPLES = "source_examples"  # a truth column (fute transfer writes it): what the size baseline ranks by
INTERVAL_KEYS = ("spearman", "top1", "regret@1")


@attrs.frozen
class TargetEvaluation:
    target: str
    candidates: tuple[str, ...]
    truth: tuple[float, ...]
    similarity: tuple[float, ...]
    results: dict[str, RankingScores]
    notes: tuple[str, ...] = ()
    baseline_scores: dict[str, tuple[float, ...]] = attrs.field(factory=dict)


@attrs.frozen
class Evaluation:
    study: str
    truth_file: str
    k: int
    relevance: str
    metric: dict[str, Any]
    space: dict[str, Any]
    targets: tuple[TargetEvaluation, ...]
    notes: tuple[str, ...] = ()
    unavailable: dict[str, str] = attrs.field(factory=dict)

    def methods(self) -> list[str]:
        seen: dict[str, None] = {}
        for t in self.targets:
            seen.update(dict.fromkeys(t.results))
        return list(seen)

    def means(self) -> dict[str, dict[str, float | None]]:
        """Each method's metrics averaged over the targets where they are defined."""
        result: dict[str, dict[str, float | None]] = {}
        for method in self.methods():
            rows = [t.results[method].to_dict(self.k) for t in self.targets if method in t.results]
            mean: dict[str, float | None] = {}
            for key in rows[0]:
                values = [r[key] for r in rows if r[key] is not None]
                mean[key] = float(np.mean(values)) if values else None
            mean["targets"] = len(rows)
            result[method] = mean
        return result

    def intervals(self, level: float = 0.95) -> dict[str, dict[str, list[float] | None]]:
        """95% bootstrap intervals over targets: each method's mean Spearman, top-1, NDCG@k and regret@1/@k, and
        its paired difference from random (an interval that excludes 0 says the method beats random beyond
        chance); the embedding's also from TextEmb where that baseline was given."""
        result: dict[str, dict[str, list[float] | None]] = {}
        for method in self.methods():
            result[method] = {}
            references = ["random", *(["textemb"] if method == EMBEDDING else [])]
            for key in dict.fromkeys((*INTERVAL_KEYS, f"ndcg@{self.k}", f"regret@{self.k}")):
                result[method][key] = _interval_of(self._values(method, None, key), level)
                for reference in references:
                    diffs = self._values(method, reference, key)
                    if diffs or reference == "random":
                        result[method][f"{key} - {reference}"] = _interval_of(diffs, level)
        return result

    def _values(self, method: str, reference: str | None, key: str) -> list[float]:
        """``method``'s ``key`` on each target where it has one, minus ``reference``'s (paired) when given."""
        values = []
        for t in self.targets:
            if method not in t.results or (reference is not None and reference not in t.results):
                continue
            own = t.results[method].to_dict(self.k)[key]
            other = t.results[reference].to_dict(self.k)[key] if reference is not None else 0.0
            if own is not None and other is not None:
                values.append(own - other)
        return values

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "truth": self.truth_file,
            "k": self.k,
            "relevance": self.relevance,
            "metric": self.metric,
            "space": self.space,
            "mean": self.means(),
            "intervals": self.intervals(),
            "targets": [
                {
                    "target": t.target,
                    "candidates": [
                        {"label": c, "score": s, "similarity": sim}
                        | {"baselines": {b: v[i] for b, v in t.baseline_scores.items()}}
                        for i, (c, s, sim) in enumerate(zip(t.candidates, t.truth, t.similarity, strict=True))
                    ],
                    "results": {m: r.to_dict(self.k) for m, r in t.results.items()},
                    "notes": list(t.notes),
                }
                for t in self.targets
            ],
            "notes": list(self.notes),
            "unavailable": dict(self.unavailable),
        }

    def baseline_rows(self) -> list[tuple[str, str, str, float]]:
        """``(target, candidate, baseline, score)``: each baseline's score of every candidate it ranked."""
        return [
            (t.target, candidate, baseline, values[i])
            for t in self.targets
            for baseline, values in t.baseline_scores.items()
            for i, candidate in enumerate(t.candidates)
        ]

    def markdown(self) -> str:
        keys = list(dict.fromkeys(["ndcg", f"ndcg@{self.k}", "regret@1", f"regret@{self.k}", "spearman", "top1"]))
        keys.append("best_rank")
        out = [f"# Evaluation of {self.study}", "", f"truth: {self.truth_file}; relevance: {self.relevance}", ""]
        means: dict[str, Mapping[str, Any]] = dict(self.means())
        means |= {name: dict.fromkeys(keys, "unavailable") for name in self.unavailable}
        out += [f"## Mean over targets ({len(self.targets)})", "", *_markdown_table(means, [*keys, "targets"]), ""]
        out += [f"- {name} unavailable: {why}" for name, why in self.unavailable.items()]
        out += [""] if self.unavailable else []
        intervals = {m: {k: _interval(v) for k, v in row.items()} for m, row in self.intervals().items()}
        out += ["95% bootstrap intervals over targets (2000 resamples; `- random`, `- textemb`: paired):", ""]
        out += [*_markdown_table(intervals, list(next(iter(intervals.values()), {}))), ""]
        for t in self.targets:
            rows = {m: r.to_dict(self.k) for m, r in t.results.items()}
            out += [f"## {t.target} ({len(t.candidates)} candidates)", "", *_markdown_table(rows, keys), ""]
            out += [f"- {note}" for note in t.notes]
            if t.notes:
                out.append("")
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"


def _interval_of(values: list[float], level: float) -> list[float] | None:
    interval = bootstrap_interval(values, level) if values else None
    return list(interval) if interval else None


def _interval(value: list[float] | None) -> str:
    return "n/a" if value is None else f"[{value[0]:.3f}, {value[1]:.3f}]"


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int | str):
        return str(value)
    return f"{value:.3f}"


def _markdown_table(rows: Mapping[str, Mapping[str, Any]], keys: Sequence[str]) -> list[str]:
    lines = ["| method | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for method, values in rows.items():
        lines.append(f"| {method} | " + " | ".join(_format(values.get(k)) for k in keys) + " |")
    return lines


def evaluate_study(
    out_dir: str | Path,
    truth: str | Path | Mapping[str, Mapping[str, float]],
    *,
    k: int = 3,
    relevance: Relevance = "minmax",
    textemb: str | Path | None = None,
    space_id: str | None = None,
    spell_sample: int | None = 32,
    spell_fallback: SpellFallback | None = None,
    target_label_free: str | Path | None = None,
    truth_column: str = "score",
    min_candidates: int = 2,
    skip_absent_targets: bool = False,
) -> Evaluation:
    """Compare the study's rankings (its ``similarity.csv``) with true scores, and the baselines.

    ``truth_column``: the truth file's column holding the scores (:func:`fute_kit.truth.read_truth`).
    ``min_candidates``: targets with fewer candidates in the truth are left out (named in the notes), so a
    transfer matrix still being measured is judged on its complete targets only.
    ``skip_absent_targets``: judge only the truth's targets this study embedded (one study per target), naming the
    others in the notes; otherwise an absent target is an error (most often a misspelt name).

    ``spell_sample``: how many texts of U fill each prompt for SPELL (scored once, then cached); None: no SPELL.
    ``spell_fallback``: the source that scores prompts whose own source cannot (``fute_kit.prompt_perplexity``).
    ``target_label_free``: label-free scores on each target's own inputs (``fute measure --label-free``), ranked
    as the baselines ``NAME@target``.
    """
    if k < 1:
        raise DataError(f"--k must be at least 1, got {k}")
    if min_candidates < 2:
        raise DataError(f"--min-candidates must be at least 2 (a ranking needs two), got {min_candidates}")
    if relevance not in ("minmax", "raw"):
        raise DataError(f"unknown relevance {relevance!r}; choose 'minmax' or 'raw'")
    study = open_study(out_dir, space_id)
    if study.similarity is None:
        raise DataError(f"{out_dir} has no similarity.csv: evaluate a finished study (fute run --out DIR)")
    truth_file = str(truth) if isinstance(truth, (str, Path)) else "(given)"
    if isinstance(truth, (str, Path)):
        table = read_truth(truth, truth_column)
        truth_file += f" ({truth_column})" if truth_column != "score" else ""
    else:
        table = {t: dict(c) for t, c in truth.items()}
    where = str(StudyFolder(out_dir).similarity_csv)
    notes = []
    if skip_absent_targets:
        present = _embedded(table, list(study.similarity.labels))
        absent = [name for name in table if name not in present]
        table = {name: rows for name, rows in table.items() if name in present}
        if not table:
            raise DataError(f"no target of {truth_file} is embedded in {where} (absent: {', '.join(absent)})")
        notes += [f"{name}: skipped, not embedded in this study" for name in absent]
    other = open_study(textemb) if textemb is not None else None
    if other is not None and other.similarity is None:
        raise DataError(f"--textemb {textemb} has no similarity.csv: give a finished study folder")
    scores = label_free_scores(study)
    unavailable = {}
    if spell_sample is not None:
        spell = spell_scores(study, sample=spell_sample, fallback=spell_fallback)
        scores[SPELL] = spell.scores
        if spell.unavailable and not spell.scores:
            unavailable[SPELL] = "; ".join(spell.unavailable)
        notes += [f"{SPELL}: {why}" for why in spell.unavailable if spell.scores]
    sizes = {e.label: float(e.provenance.n_examples) for e in study.embeddings}
    if isinstance(truth, (str, Path)) and SOURCE_EXAMPLES in truth_columns(truth):
        sizes.update(_truth_sizes(read_truth(truth, SOURCE_EXAMPLES), list(study.similarity.labels), where))
        notes.append(f"size: ranks by the truth file's {SOURCE_EXAMPLES} (the examples each candidate was trained on)")
    on_target = _target_label_free(target_label_free, list(study.similarity.labels), where, skip_absent_targets)
    baselines = _Baselines(sizes, scores, other, on_target)
    targets = []
    grouped = _truth_by_label(table, list(study.similarity.labels), where)
    for target, group in grouped.items():
        if len(group) < min_candidates:
            notes.append(f"{target}: skipped, it has {len(group)} candidate(s), fewer than {min_candidates}")
            continue
        targets.append(_evaluate_target(study.similarity, target, group, baselines, k, relevance))
    if not targets:
        raise DataError(f"no target of {truth_file} has at least {min_candidates} candidates to rank")
    if any(name in t.results for t in targets for name in LABEL_FREE):
        notes.append("label-free scores are computed on U (the MTEs' unlabelled text), the same for every target")
    metric = dict(study.metric) or {"name": study.similarity.metric}
    return Evaluation(
        str(out_dir), truth_file, k, relevance, metric, study.space.to_dict(), tuple(targets), tuple(notes), unavailable
    )


@attrs.frozen
class _Baselines:
    """What the baselines rank by: examples per embedding, label-free scores (and SPELL's), another study's
    similarities."""

    sizes: dict[str, float]
    label_free: dict[str, dict[str, float]]
    textemb: Study | None
    on_target: dict[str, dict[str, dict[str, float]]]  # target -> NAME@target -> candidate -> score


def _embedded(names: Iterable[str], labels: list[str]) -> set[str]:
    """The names (targets of a truth or label-free file) that name an embedding of the study."""
    found = set()
    for name in names:
        try:
            resolve_label(name, labels)
            found.add(name)
        except UnknownSubjectError:
            pass
    return found


def _target_label_free(
    path: str | Path | None, labels: list[str], where: str, skip_absent: bool = False
) -> dict[str, dict[str, dict[str, float]]]:
    """target label -> ``NAME@target`` -> candidate label -> score, from a ``fute measure --label-free`` file."""
    if path is None:
        return {}
    found: dict[str, dict[str, dict[str, float]]] = {}
    rows = list(read_label_free(path))
    if skip_absent:
        present = _embedded({row[0] for row in rows}, labels)
        rows = [row for row in rows if row[0] in present]
    for target, candidate, baseline, score in rows:
        t = resolve_label(target, labels, f"target of {path}", where)
        c = resolve_label(candidate, labels, f"candidate of {path}", where)
        found.setdefault(t, {}).setdefault(f"{baseline}@target", {})[c] = score
    return found


def _truth_sizes(table: Mapping[str, Mapping[str, float]], labels: list[str], where: str) -> dict[str, float]:
    """candidate label -> its training examples, from a truth file's source_examples column."""
    return {c: size for group in _truth_by_label(table, labels, where).values() for c, (_, size) in group.items()}


def _truth_by_label(
    table: Mapping[str, Mapping[str, float]], labels: list[str], where: str
) -> dict[str, dict[str, tuple[str, float]]]:
    """target label -> candidate label -> (name in the truth, score), every name resolved to a stored label."""
    grouped: dict[str, dict[str, tuple[str, float]]] = {}
    for target_name, rows in table.items():
        target = resolve_label(target_name, labels, "target", where)
        group = grouped.setdefault(target, {})
        for name, score in rows.items():
            candidate = resolve_label(name, labels, f"candidate of {target_name!r}", where)
            if candidate == target:
                raise DataError(f"truth file: target {target!r} is listed among its own candidates; remove that row")
            if candidate in group:
                raise DataError(f"truth file: {target} / {candidate} is given twice (as {group[candidate][0]!r} "
                                f"and {name!r})")  # fmt: skip
            group[candidate] = (name, score)
    return grouped


def _evaluate_target(
    matrix: SimilarityMatrix,
    target: str,
    group: dict[str, tuple[str, float]],
    baselines: _Baselines,
    k: int,
    relevance: Relevance,
) -> TargetEvaluation:
    """The embedding's ranking of one target's candidates and every baseline's, scored against the truth."""
    labels = list(matrix.labels)
    cands = list(group)
    true = np.array([score for _, score in group.values()])
    row = matrix.values[labels.index(target)]
    sims = np.array([row[labels.index(c)] for c in cands])
    results = {EMBEDDING: ranking_scores(sims, true, k, relevance), "random": random_scores(true, k, relevance)}
    notes = []
    predicted: dict[str, np.ndarray] = {}
    if baselines.textemb is not None:
        other = _textemb_scores(baselines.textemb, target, [name for name, _ in group.values()])
        if isinstance(other, str):
            notes.append(f"textemb: {other}")
        else:
            predicted["textemb"] = other
    if all(c in baselines.sizes for c in cands):
        predicted["size"] = np.array([baselines.sizes[c] for c in cands])
        if np.all(predicted["size"] == predicted["size"][0]):
            notes.append("size: every candidate has the same number of examples (so it ranks as random)")
    for name in (*LABEL_FREE, SPELL):
        scores = baselines.label_free.get(name, {})
        if all(c in scores for c in cands):
            predicted[name] = np.array([scores[c] for c in cands])
    for name, scores in baselines.on_target.get(target, {}).items():
        if all(c in scores for c in cands):
            predicted[name] = np.array([scores[c] for c in cands])
        else:
            notes.append(f"{name}: not every candidate was measured with the others on the target's inputs")
    if not any(name in predicted for name in LABEL_FREE) and any(split_label(c)[0] == "model" for c in cands):
        notes.append("label-free scores: no cached predictions on U for every candidate model")
    results |= {name: ranking_scores(values, true, k, relevance) for name, values in predicted.items()}
    return TargetEvaluation(
        target,
        tuple(cands),
        tuple(true.tolist()),
        tuple(sims.tolist()),
        results,
        tuple(notes),
        {name: tuple(values.tolist()) for name, values in predicted.items()},
    )


def _textemb_scores(other: Study, target: str, candidates: list[str]) -> np.ndarray | str:
    """Similarities in another study to the same target, or why they cannot be had."""
    assert other.similarity is not None
    labels = list(other.similarity.labels)
    try:
        t = resolve_label(target, labels, "target", str(other.out_dir))
        cands = [resolve_label(c, labels, "candidate", str(other.out_dir)) for c in candidates]
    except DataError as exc:
        return str(exc)
    row = other.similarity.values[labels.index(t)]
    return np.array([row[labels.index(c)] for c in cands])


def pool_evaluations(evaluations: Sequence[Evaluation]) -> Evaluation:
    """Several studies' evaluations (seeds of one study, the same truth and k) as one: each target is named
    ``target @ study folder`` (the folder's name, or its path where names repeat), so means and bootstrap
    intervals are over targets x seeds."""
    if len(evaluations) == 1:
        return evaluations[0]
    first = evaluations[0]
    for other in evaluations[1:]:
        if (other.k, other.relevance) != (first.k, first.relevance):
            raise DataError(f"cannot pool {first.study} and {other.study}: their k or relevance differ")
    names = [Path(e.study).name for e in evaluations]
    if len(set(names)) < len(names):  # folders of one name in different places: their full paths tell them apart
        names = [e.study for e in evaluations]
    targets = tuple(
        attrs.evolve(t, target=f"{t.target} @ {name}")
        for name, e in zip(names, evaluations, strict=True)
        for t in e.targets
    )
    notes = tuple(f"{e.study}: {note}" for e in evaluations for note in e.notes)
    unavailable = {name: why for e in evaluations for name, why in e.unavailable.items()}
    studies = ", ".join(e.study for e in evaluations)
    return Evaluation(
        studies, first.truth_file, first.k, first.relevance, first.metric, first.space, targets, notes, unavailable
    )


def write_evaluation(evaluation: Evaluation, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(evaluation.to_dict(), indent=2, allow_nan=False))
    return path


def write_baselines(evaluation: Evaluation, path: str | Path) -> Path:
    """``baselines.csv``: ``target,candidate,baseline,score`` for every baseline that scored the candidates."""
    return write_score_rows(evaluation.baseline_rows(), path)
