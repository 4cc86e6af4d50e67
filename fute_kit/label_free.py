"""Label-free prompt-selection scores: what a model's own predictions on U say about it, with no true labels.

For models with cached predictions on U (``OUT/predictions``): ``mutual_information`` (H(mean p) -
mean H(p)), ``label_entropy`` (entropy of the histogram of predicted labels), ``neg_mean_entropy``
(minus the mean per-example entropy: confident is better), and agreement with the pseudo-labels of an
ensemble of all prompts of the same LLM: ``ensemble_mean`` (argmax of the mean probabilities) and
``ensemble_vote`` (majority vote), and ``mdl``, below. These scores are computed on U, the unlabelled text the
MTEs were made from, not on a target's own inputs, so they rank the prompts the same way for every target.

MDL (Wu et al. 2023, "Self-adaptive In-context Learning: An Information Compression Perspective for In-context
Example Selection and Ordering", ACL; the OpenICL ``MDLRetriever``): for each test input x, choose among the
candidate prompts c the one with the shortest expected codelength of the unknown label,
``E_{y ~ p(y|c,x)}[-log p(y|c,x)] = H(p(.|c,x))``, with p the model's class probabilities normalised over the
label words. MDL is instance-wise: averaged over a whole dataset the same codelength is minus ``neg_mean_entropy``
(LE), so for choosing one prompt per dataset ``mdl`` scores each prompt by the share of inputs of U on which MDL
chooses it among the prompts of its ensemble (lowest entropy; a tie splits the input among the tied prompts),
as Yang et al. 2024 ("Improving Probability-based Prompt Selection Through Unified Evaluation and Analysis",
TACL) compare the instance-wise MDL with the dataset-wise LE.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fute_kit.atomic import atomic_write_text
from fute_kit.errors import DataError
from fute_kit.prompts import is_prompt, llm_of
from fute_kit.selection import Study
from fute_kit.study_folder import StudyFolder

# The scores of a prompt against the others measured with it: replaced as a set for a target (see write_label_free).
ENSEMBLE_SCORES = ("mdl", "ensemble_mean", "ensemble_vote")
LABEL_FREE = (
    "mutual_information",
    "label_entropy",
    "neg_mean_entropy",
    "mdl",
    "ensemble_mean",
    "ensemble_vote",
)


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=axis)


def load_predictions(out_dir: str | Path, key: str) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """A model's cached labels on U as probabilities (n, classes), or None if absent or regression."""
    cached = StudyFolder(out_dir).prediction_cache().read(key)
    return None if cached is None else probabilities(cached)


def probabilities(predictions: Any) -> tuple[np.ndarray, tuple[str, ...]] | None:
    """Predictions (soft or hard labels with label names) as probabilities (n, classes); None for regression."""
    if predictions.label_kind == "soft":
        return np.asarray(predictions.labels, dtype=np.float64), tuple(predictions.label_names)
    if predictions.label_kind == "hard":
        one_hot = np.eye(len(predictions.label_names))[np.asarray(predictions.labels, dtype=np.int64)]
        return one_hot, tuple(predictions.label_names)
    return None


def label_free_scores(study: Study) -> dict[str, dict[str, float]]:
    """Each label-free prompt-selection score of every model with cached predictions on U."""
    probs: dict[str, tuple[np.ndarray, tuple[str, ...]]] = {}
    for e in study.embeddings:
        if e.kind == "model":
            loaded = load_predictions(study.out_dir, e.provenance.data_fingerprint)
            if loaded is not None and len(loaded[0]):
                probs[e.label] = loaded
    return scores_of(probs)


def scores_of(probs: dict[str, tuple[np.ndarray, tuple[str, ...]]]) -> dict[str, dict[str, float]]:
    """Each label-free score of each model (``name: (probabilities (n, classes), label names)``), all on the same
    inputs: U for ``label_free_scores``, a target's own inputs for ``fute measure --label-free``."""
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
            groups.setdefault((llm_of(label), tuple(sorted(probs[label][1]))), []).append(label)
    for members in groups.values():
        _score_against_ensemble(members, probs, scores)
    return scores


def _score_against_ensemble(
    members: list[str],
    probs: dict[str, tuple[np.ndarray, tuple[str, ...]]],
    scores: dict[str, dict[str, float]],
) -> None:
    """Each prompt's agreement with the pseudo-labels of its ensemble (mean probabilities, majority vote)."""
    names = tuple(sorted(probs[members[0]][1]))  # one fixed class order, so ties break the same way
    n = len(probs[members[0]][0])
    aligned = []
    for label in members:
        p, own = probs[label]
        # Prompts of one LLM must share label names (any order) and the same U to vote together.
        if sorted(own) != sorted(names) or len(p) != n or len(names) != p.shape[1]:
            return
        aligned.append(p[:, [own.index(name) for name in names]])
    if len(aligned) < 2:
        return
    stack = np.stack(aligned)  # (prompts, n, classes)
    choices = stack.argmax(axis=2)
    pseudo_mean = stack.mean(axis=0).argmax(axis=1)
    votes = np.stack([(choices == c).sum(axis=0) for c in range(len(names))], axis=1)
    pseudo_vote = votes.argmax(axis=1)
    for label, choice in zip(members, choices, strict=True):
        scores["ensemble_mean"][label] = float((choice == pseudo_mean).mean())
        scores["ensemble_vote"][label] = float((choice == pseudo_vote).mean())
    for label, share in zip(members, mdl_shares(stack), strict=True):
        scores["mdl"][label] = share


def mdl_shares(probs: np.ndarray) -> list[float]:
    """MDL's instance-wise choice among prompts (probs: prompts x inputs x classes): each prompt's share of the
    inputs on which its prediction has the lowest entropy (the shortest expected codelength of the label);
    prompts tied at the lowest entropy share that input equally."""
    codelength = _entropy(probs, axis=2)  # (prompts, inputs)
    shortest = np.isclose(codelength, codelength.min(axis=0, keepdims=True), rtol=0, atol=1e-12)
    return (shortest / shortest.sum(axis=0, keepdims=True)).mean(axis=1).tolist()


def write_label_free(rows: Sequence[tuple[str, str, str, float]], path: str | Path, append: bool = False) -> Path:
    """Write ``target,candidate,baseline,score`` rows (``fute measure --label-free``); with ``append``, keep the
    file's other rows. A target's ensemble scores are replaced as a set when ``rows`` has any: they were computed
    against the prompts measured together, so older ones are against another ensemble."""
    kept: list[tuple[str, str, str, float]] = []
    if append and Path(path).exists():
        replaced = {(t, c, b) for t, c, b, _ in rows}
        new_ensembles = {t for t, _, b, _ in rows if b in ENSEMBLE_SCORES}
        kept = [
            row
            for row in read_label_free(path)
            if row[:3] not in replaced and not (row[0] in new_ensembles and row[2] in ENSEMBLE_SCORES)
        ]
    return write_score_rows([*kept, *rows], path)


def write_score_rows(rows: Iterable[tuple[str, str, str, float]], path: str | Path) -> Path:
    """A ``target,candidate,baseline,score`` CSV (``baselines.csv``, ``fute measure --label-free``), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["target", "candidate", "baseline", "score"])
    writer.writerows((t, c, b, repr(float(v))) for t, c, b, v in rows)
    atomic_write_text(Path(path), buffer.getvalue())
    return Path(path)


def read_label_free(path: str | Path) -> list[tuple[str, str, str, float]]:
    """The rows of a ``target,candidate,baseline,score`` file, or DataError naming what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"label-free scores {path} do not exist (write them with fute measure ... --label-free {path})")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"target", "candidate", "baseline", "score"} - set(reader.fieldnames or [])
        if missing:
            raise DataError(
                f"{path}: missing column(s) {', '.join(sorted(missing))} (need target,candidate,baseline,score)"
            )
        try:
            return [(r["target"], r["candidate"], r["baseline"], float(r["score"])) for r in reader]
        except ValueError as exc:
            raise DataError(f"{path}: a score is not a number ({exc})") from exc
