"""Judging a ranking against measured truth, with the baselines the field compares against.

The truth is a CSV with columns ``target,candidate,score``: for intermediate-task selection the
transfer gain of each source (candidate) on each target, for prompt selection each prompt's real
accuracy on the target dataset. For each target the candidates are ranked by embedding similarity
(``similarity.csv`` of the study) and compared with the true scores.

Metrics (per target, then averaged over targets):

- ``ndcg`` and ``ndcg@k``: gain ``2**rel - 1`` with the discount ``1 / log2(position + 1)``. With
  ``relevance="minmax"`` (default) ``rel`` is the true score min-max scaled per target to [0, 1]
  (the worst candidate gains 0, the best 1); with ``"raw"`` the scores are used as given (they must
  be non-negative, for example accuracies in [0, 1]). A target whose scores are all equal has no
  ideal order: its NDCG is undefined (None) and left out of the means.
- ``regret@k``: ``(best - best in the top k) / best x 100`` on the raw scores (undefined when the
  best score is not positive, as for transfer gains that are all losses).
- ``spearman``: rank correlation (ties in the truth get their mean rank; undefined when the truth is
  constant).
- ``top1``: 1 when the first-ranked candidate has the best true score.
- ``best_rank``: position (1 = first) at which the first truly best candidate is ranked.

Ties in a ranking are broken at random and every metric is its exact expectation over those
tie-breaks (so a constant ranking scores Spearman 0, not "undefined"). The ``random`` baseline is
thus computed exactly: every candidate tied.

Baselines: ``random``; ``textemb`` (another study's similarities, such as a TextEmb space);
``size`` (more examples first, from the embeddings' provenance ``n_examples``); and, for models
with cached predictions on U (``OUT/predictions``), the label-free prompt-selection scores:
``mutual_information`` (H(mean p) - mean H(p)), ``label_entropy`` (entropy of the histogram of
predicted labels), ``neg_mean_entropy`` (minus the mean per-example entropy: confident is better),
and agreement with the pseudo-labels of an ensemble of all prompts of the same LLM:
``ensemble_mean`` (argmax of the mean probabilities) and ``ensemble_vote`` (majority vote).
These label-free scores are computed on U, the unlabelled text the MTEs were made from, not on the
target's own inputs, so they rank the prompts the same way for every target.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_text
from fute_kit.errors import DataError
from fute_kit.selection import Study, is_prompt, open_study, resolve_label, split_label

Relevance = Literal["minmax", "raw"]
METRIC_NAMES: tuple[str, ...] = ("ndcg", "ndcg@k", "regret@k", "spearman", "top1", "best_rank")
EMBEDDING = "embedding"
LABEL_FREE = ("mutual_information", "label_entropy", "neg_mean_entropy", "ensemble_mean", "ensemble_vote")


# -- metrics of one ranking -------------------------------------------------------------------------
@attrs.frozen
class RankingScores:
    """How well one ranking of a target's candidates matches their true scores (None: undefined)."""

    ndcg: float | None
    ndcg_at_k: float | None
    regret_at_k: float | None
    spearman: float | None
    top1: float
    best_rank: float

    def to_dict(self, k: int) -> dict[str, float | None]:
        return {
            "ndcg": self.ndcg,
            f"ndcg@{k}": self.ndcg_at_k,
            f"regret@{k}": self.regret_at_k,
            "spearman": self.spearman,
            "top1": self.top1,
            "best_rank": self.best_rank,
        }


def _tie_groups(predicted: np.ndarray) -> list[np.ndarray]:
    """Indices grouped by equal predicted score, best group first."""
    values, inverse = np.unique(-predicted, return_inverse=True)
    return [np.flatnonzero(inverse == g) for g in range(len(values))]


def _expected_dcg(groups: Sequence[np.ndarray], gains: np.ndarray, k: int) -> float:
    # Within a tie group every member is equally likely at each of the group's positions, so its
    # expected discount is the mean discount of those positions.
    total, start = 0.0, 0
    for group in groups:
        positions = np.arange(start, start + len(group))
        discounts = np.where(positions < k, 1.0 / np.log2(positions + 2.0), 0.0)
        total += float(gains[group].sum() * discounts.mean())
        start += len(group)
    return total


def _expected_best_in_top(groups: Sequence[np.ndarray], truth: np.ndarray, k: int) -> float:
    best, start = -math.inf, 0
    for group in groups:
        if start + len(group) <= k:
            best = max(best, float(truth[group].max()))
            start += len(group)
            continue
        take = k - start
        if take > 0:
            # r of the m tied members enter the top k at random: the j-th best member (0-based) is the
            # best one taken with probability C(m-1-j, r-1) / C(m, r).
            values = np.sort(truth[group])[::-1]
            m = len(values)
            expected = sum(
                math.comb(m - 1 - j, take - 1) / math.comb(m, take) * max(best, float(v)) for j, v in enumerate(values)
            )
            return float(expected)
        break
    return best


def _midranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); None when either side is constant."""
    ra, rb = _midranks(np.asarray(a, dtype=np.float64)), _midranks(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return None if denominator == 0 else float(ra @ rb) / denominator


def _tie_broken_spearman(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """Spearman's rho averaged over random orders of tied predictions (ties in the truth keep mid-ranks).

    A random order of a tie group has the group's mid-rank as its mean and the variance of a full
    ranking 1..n, so the expectation is cov(mid-ranks, truth ranks) / (sd(1..n) sd(truth ranks)).
    """
    ranks, true_ranks = _midranks(predicted), _midranks(truth)
    centred = true_ranks - true_ranks.mean()
    positions = np.arange(1, len(predicted) + 1) - (len(predicted) + 1) / 2.0
    denominator = math.sqrt(float(positions @ positions) * float(centred @ centred))
    return None if denominator == 0 else float((ranks - ranks.mean()) @ centred) / denominator


def relevance_of(truth: np.ndarray, relevance: Relevance = "minmax") -> np.ndarray:
    if relevance == "raw":
        if np.any(truth < 0):
            raise DataError("relevance 'raw' needs non-negative true scores; use relevance 'minmax' (the default)")
        return truth
    if relevance != "minmax":
        raise DataError(f"unknown relevance {relevance!r}; choose 'minmax' or 'raw'")
    spread = float(truth.max() - truth.min())
    return np.zeros_like(truth) if spread == 0 else (truth - truth.min()) / spread


def ranking_scores(
    predicted: Sequence[float] | np.ndarray,
    truth: Sequence[float] | np.ndarray,
    k: int = 3,
    relevance: Relevance = "minmax",
) -> RankingScores:
    """Compare predicted scores (higher = ranked first) with true scores of the same candidates.

    Ties in ``predicted`` are broken at random and each metric is its expectation over the tie-breaks.
    """
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(truth, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1 or len(pred) == 0:
        raise DataError(f"ranking_scores needs two equal-length score vectors, got {pred.shape} and {true.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(true))):
        raise DataError("ranking_scores: scores must be finite numbers")
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    n = len(pred)
    groups = _tie_groups(pred)
    gains = 2.0 ** relevance_of(true, relevance) - 1.0
    ideal = [np.array([i]) for i in np.argsort(-gains, kind="stable")]

    def ndcg(cut: int) -> float | None:
        best = _expected_dcg(ideal, gains, cut)
        return None if best <= 0 else _expected_dcg(groups, gains, cut) / best

    best_true = float(true.max())
    in_top = _expected_best_in_top(groups, true, min(k, n))
    regret = None if best_true <= 0 else (best_true - in_top) / best_true * 100.0
    is_best = np.isclose(true, best_true, rtol=0, atol=1e-12)
    first = groups[0]
    top1 = float(is_best[first].mean())
    start = 0
    for group in groups:
        hits = int(is_best[group].sum())
        if hits:
            # The first of b marked items among m shuffled ones sits at (m + 1) / (b + 1) on average.
            best_rank = start + (len(group) + 1) / (hits + 1)
            break
        start += len(group)
    rho = _tie_broken_spearman(pred, true)
    return RankingScores(ndcg(n), ndcg(min(k, n)), regret, rho, top1, float(best_rank))


def random_scores(truth: Sequence[float] | np.ndarray, k: int = 3, relevance: Relevance = "minmax") -> RankingScores:
    """The exact expected scores of a uniformly random order: every candidate tied."""
    return ranking_scores(np.zeros(len(truth)), truth, k, relevance)


# -- truth ------------------------------------------------------------------------------------------
def read_truth(path: str | Path) -> dict[str, dict[str, float]]:
    """``target -> candidate -> score`` from a CSV with columns target, candidate, score."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"truth file {path} does not exist (a CSV with columns target,candidate,score)")
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: spreadsheets often write a BOM
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("target", "candidate", "score") if c not in columns]
        if missing:
            raise DataError(
                f"truth file {path}: missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'} "
                "(the header must be target,candidate,score)"
            )
        truth: dict[str, dict[str, float]] = {}
        for line, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            target, candidate = row["target"], row["candidate"]
            if not target or not candidate:
                raise DataError(f"truth file {path}, line {line}: empty target or candidate")
            try:
                score = float(row["score"])
            except ValueError:
                raise DataError(f"truth file {path}, line {line}: score {row['score']!r} is not a number") from None
            if not math.isfinite(score):
                raise DataError(f"truth file {path}, line {line}: score {row['score']!r} is not finite")
            if candidate in truth.setdefault(target, {}):
                raise DataError(f"truth file {path}, line {line}: {target!r} / {candidate!r} is given twice")
            truth[target][candidate] = score
    if not truth:
        raise DataError(f"truth file {path} has a header but no rows")
    return truth


# -- label-free scores from cached predictions ----------------------------------------------------
def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=axis)


def load_predictions(out_dir: str | Path, key: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """A model's cached labels on U as probabilities (n, classes), or None if absent or regression."""
    meta_path = Path(out_dir) / "predictions" / f"{key}.json"
    if not meta_path.is_file():
        return None
    from safetensors.numpy import load_file

    meta = json.loads(meta_path.read_text())
    labels = load_file(str(meta_path.with_suffix(".safetensors")))["labels"]
    names = tuple(meta.get("label_names") or ())
    if meta["label_kind"] == "soft":
        return np.asarray(labels, dtype=np.float64), names
    if meta["label_kind"] == "hard":
        return np.eye(len(names))[np.asarray(labels, dtype=np.int64)], names
    return None


def label_free_scores(study: Study) -> dict[str, dict[str, float]]:
    """Each label-free prompt-selection score of every model with cached predictions on U."""
    probs: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for e in study.embeddings:
        if e.kind == "model":
            loaded = load_predictions(study.out_dir, e.provenance.data_fingerprint)
            if loaded is not None and len(loaded[0]):
                probs[e.label] = loaded
    scores: dict[str, dict[str, float]] = {name: {} for name in LABEL_FREE}
    for label, (p, _) in probs.items():
        k = p.shape[1]
        scores["mutual_information"][label] = float(_entropy(p.mean(axis=0)) - _entropy(p).mean())
        histogram = np.bincount(p.argmax(axis=1), minlength=k) / len(p)
        scores["label_entropy"][label] = float(_entropy(histogram))
        scores["neg_mean_entropy"][label] = float(-_entropy(p).mean())
    # An ensemble is the prompts of one LLM that answer with the same classes (a study may hold prompts of
    # several tasks for one LLM: each task's prompts vote among themselves).
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for label in probs:
        if is_prompt(label):
            llm = split_label(label)[1].split("/", 1)[0]
            groups.setdefault((llm, tuple(sorted(probs[label][1]))), []).append(label)
    for members in groups.values():
        names = tuple(sorted(probs[members[0]][1]))  # one fixed class order, so ties break the same way
        n = len(probs[members[0]][0])
        aligned = []
        for label in members:
            p, own = probs[label]
            # Prompts of one LLM must share label names (any order) and the same U to vote together.
            if sorted(own) != sorted(names) or len(p) != n or len(names) != p.shape[1]:
                aligned = []
                break
            aligned.append(p[:, [own.index(name) for name in names]])
        if len(aligned) < 2:
            continue
        stack = np.stack(aligned)  # (prompts, n, classes)
        choices = stack.argmax(axis=2)
        pseudo_mean = stack.mean(axis=0).argmax(axis=1)
        votes = np.stack([(choices == c).sum(axis=0) for c in range(len(names))], axis=1)
        pseudo_vote = votes.argmax(axis=1)
        for label, choice in zip(members, choices, strict=True):
            scores["ensemble_mean"][label] = float((choice == pseudo_mean).mean())
            scores["ensemble_vote"][label] = float((choice == pseudo_vote).mean())
    return scores


# -- a whole evaluation -----------------------------------------------------------------------------
@attrs.frozen
class TargetEvaluation:
    target: str
    candidates: tuple[str, ...]
    truth: tuple[float, ...]
    similarity: tuple[float, ...]
    results: dict[str, RankingScores]
    notes: tuple[str, ...] = ()


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "truth": self.truth_file,
            "k": self.k,
            "relevance": self.relevance,
            "metric": self.metric,
            "space": self.space,
            "mean": self.means(),
            "targets": [
                {
                    "target": t.target,
                    "candidates": [
                        {"label": c, "score": s, "similarity": sim}
                        for c, s, sim in zip(t.candidates, t.truth, t.similarity, strict=True)
                    ],
                    "results": {m: r.to_dict(self.k) for m, r in t.results.items()},
                    "notes": list(t.notes),
                }
                for t in self.targets
            ],
            "notes": list(self.notes),
        }

    def markdown(self) -> str:
        keys = ["ndcg", f"ndcg@{self.k}", f"regret@{self.k}", "spearman", "top1", "best_rank"]
        out = [f"# Evaluation of {self.study}", "", f"truth: {self.truth_file}; relevance: {self.relevance}", ""]
        means = self.means()
        out += [f"## Mean over targets ({len(self.targets)})", "", *_markdown_table(means, [*keys, "targets"]), ""]
        for t in self.targets:
            rows = {m: r.to_dict(self.k) for m, r in t.results.items()}
            out += [f"## {t.target} ({len(t.candidates)} candidates)", "", *_markdown_table(rows, keys), ""]
            out += [f"- {note}" for note in t.notes]
            if t.notes:
                out.append("")
        out += [f"- {note}" for note in self.notes]
        return "\n".join(out).rstrip() + "\n"


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int):
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
) -> Evaluation:
    """Compare the study's rankings (its ``similarity.csv``) with true scores, and the baselines."""
    if k < 1:
        raise DataError(f"--k must be at least 1, got {k}")
    if relevance not in ("minmax", "raw"):
        raise DataError(f"unknown relevance {relevance!r}; choose 'minmax' or 'raw'")
    study = open_study(out_dir, space_id)
    if study.similarity is None:
        raise DataError(f"{out_dir} has no similarity.csv: evaluate a finished study (fute run --out DIR)")
    truth_file = str(truth) if isinstance(truth, (str, Path)) else "(given)"
    table = read_truth(truth) if isinstance(truth, (str, Path)) else {t: dict(c) for t, c in truth.items()}
    matrix = study.similarity
    labels = list(matrix.labels)
    other = open_study(textemb) if textemb is not None else None
    if other is not None and other.similarity is None:
        raise DataError(f"--textemb {textemb} has no similarity.csv: give a finished study folder")
    sizes = {e.label: float(e.provenance.n_examples) for e in study.embeddings}
    label_free = label_free_scores(study)
    targets = []
    notes = []
    where = f"{out_dir}/similarity.csv"
    grouped: dict[str, dict[str, tuple[str, float]]] = {}  # target label -> candidate label -> (name, score)
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
    for target, group in grouped.items():
        if len(group) < 2:
            notes.append(f"{target}: skipped, it has {len(group)} candidate (a ranking needs at least 2)")
            continue
        cands = list(group)
        true = np.array([score for _, score in group.values()])
        row = matrix.values[labels.index(target)]
        sims = np.array([row[labels.index(c)] for c in cands])
        results = {EMBEDDING: ranking_scores(sims, true, k, relevance), "random": random_scores(true, k, relevance)}
        target_notes = []
        if other is not None:
            predicted = _textemb_scores(other, target, [name for name, _ in group.values()])
            if isinstance(predicted, str):
                target_notes.append(f"textemb: {predicted}")
            else:
                results["textemb"] = ranking_scores(predicted, true, k, relevance)
        if all(c in sizes for c in cands):
            size = np.array([sizes[c] for c in cands])
            results["size"] = ranking_scores(size, true, k, relevance)
            if np.all(size == size[0]):
                target_notes.append("size: every candidate has the same number of examples (so it ranks as random)")
        for name in LABEL_FREE:
            scores = label_free[name]
            if all(c in scores for c in cands):
                results[name] = ranking_scores([scores[c] for c in cands], true, k, relevance)
        if not any(name in results for name in LABEL_FREE) and any(split_label(c)[0] == "model" for c in cands):
            target_notes.append("label-free scores: no cached predictions on U for every candidate model")
        evaluated = TargetEvaluation(target, tuple(cands), tuple(true.tolist()), tuple(sims.tolist()), results)
        targets.append(attrs.evolve(evaluated, notes=tuple(target_notes)))
    if not targets:
        raise DataError(f"no target of {truth_file} has at least 2 candidates to rank")
    if any(name in t.results for t in targets for name in LABEL_FREE):
        notes.append("label-free scores are computed on U (the MTEs' unlabelled text), the same for every target")
    metric = dict(study.metric) or {"name": matrix.metric}
    return Evaluation(
        str(out_dir), truth_file, k, relevance, metric, study.space.to_dict(), tuple(targets), tuple(notes)
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


def write_evaluation(evaluation: Evaluation, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(evaluation.to_dict(), indent=2, allow_nan=False))
    return path


# -- measuring the truth ----------------------------------------------------------------------------
def _normalise(name: str) -> str:
    return name.strip().lower()


def _predicted_names(predictions: Any, model: str) -> list[str]:
    """The label name each prediction chose (argmax of soft labels)."""
    if predictions.label_kind == "soft":
        chosen = np.asarray(predictions.labels).argmax(axis=1)
    elif predictions.label_kind == "hard":
        chosen = np.asarray(predictions.labels)
    else:
        raise DataError(
            f"model {model!r} returned {predictions.label_kind} outputs; accuracy needs class labels (soft or hard)"
        )
    names = list(predictions.label_names)
    if not names:
        raise DataError(f"model {model!r} returned labels without label names; its source must name its classes")
    return [names[i] for i in chosen.tolist()]


def _check_label_names(model: str, model_names: Sequence[str], dataset: str, dataset_names: Sequence[str]) -> None:
    if {_normalise(n) for n in model_names} != {_normalise(n) for n in dataset_names}:
        raise DataError(
            f"model {model!r} predicts labels {sorted(model_names)} but dataset {dataset!r} has labels "
            f"{sorted(dataset_names)}; they are matched by name (case-insensitive): make the model's label "
            "names (label words, probabilities keys...) the dataset's"
        )


def measure_accuracy(
    config: Any,
    dataset: str,
    *,
    split: str | None = None,
    limit: int | None = None,
    models: Sequence[str] = (),
    registry: Any = None,
    context: Any = None,
) -> list[tuple[str, str, float]]:
    """Each configured model's accuracy on a labelled dataset of the study: ``(dataset, model, accuracy)``.

    Predictions (argmax) are matched to the dataset's labels by name. Every model is first asked
    for one example so a model whose label names differ fails before the long runs.
    """
    import difflib

    from fute_kit.components import RunContext
    from fute_kit.options import option_fields
    from fute_kit.registry import get_registry

    registry = registry or get_registry()
    context = context or RunContext(show_progress=False)
    by_name = {ref.name: ref for ref in config.datasets}
    if dataset not in by_name:
        close = difflib.get_close_matches(dataset, list(by_name), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"no dataset {dataset!r} in {config.path or 'the configuration'}{hint} "
            f"(its [[datasets]]: {', '.join(by_name) or 'none'})"
        )
    ref = by_name[dataset]
    options = dict(ref.options)
    if split is not None:
        fields = {f.name for f in option_fields(registry.get("dataset_source", ref.source).cls)}
        if "split" not in fields:
            raise DataError(f"dataset {dataset!r}: source {ref.source!r} has no 'split' option; drop --split")
        options["split"] = split
    source = registry.build("dataset_source", ref.source, options, owner=f"dataset {dataset!r}")
    model_refs = list(config.models)
    if models:
        known = {m.name: m for m in model_refs}
        unknown = [m for m in models if m not in known]
        if unknown:
            raise DataError(
                f"no model {', '.join(repr(m) for m in unknown)} in {config.path or 'the configuration'} "
                f"(its [[models]]: {', '.join(known) or 'none'})"
            )
        model_refs = [known[m] for m in models]
    if not model_refs:
        raise DataError(f"{config.path or 'the configuration'} has no [[models]] to measure")
    built = [
        (m.name, registry.build("model_source", m.source, m.options, owner=f"model {m.name!r}")) for m in model_refs
    ]
    examples = source.load(context).require_nonempty().sample(limit or ref.limit)
    if examples.label_kind != "hard":
        raise DataError(f"dataset {dataset!r} has {examples.label_kind} labels; accuracy needs class labels")
    gold = [_normalise(examples.label_names[i]) for i in np.asarray(examples.labels).tolist()]
    inputs = examples.unlabeled()
    for name, model in built:
        probe = model.predict(inputs.select([0]), context)
        _check_label_names(name, probe.label_names, dataset, examples.label_names)
    rows = []
    for name, model in built:
        predictions = model.predict(inputs, context)
        if len(predictions) != len(inputs):
            raise DataError(f"model {name!r} returned {len(predictions)} predictions for {len(inputs)} inputs")
        _check_label_names(name, predictions.label_names, dataset, examples.label_names)
        chosen = [_normalise(n) for n in _predicted_names(predictions, name)]
        accuracy = float(np.mean([a == b for a, b in zip(chosen, gold, strict=True)]))
        rows.append((dataset, name, accuracy))
    return rows


def write_truth(rows: Sequence[tuple[str, str, float]], path: str | Path, append: bool = False) -> Path:
    """Write ``target,candidate,score`` rows; with ``append``, keep the file's other rows."""
    import io

    path = Path(path)
    existing: list[tuple[str, str, float]] = []
    if append and path.exists():
        replaced = {(t, c) for t, c, _ in rows}
        existing = [
            (t, c, s) for t, scores in read_truth(path).items() for c, s in scores.items() if (t, c) not in replaced
        ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["target", "candidate", "score"])
    writer.writerows((t, c, repr(float(s))) for t, c, s in [*existing, *rows])
    atomic_write_text(path, buffer.getvalue())
    return path
