"""Selection: rank stored embeddings of one space by similarity to a target.

Typical queries: which models (or which prompts of an LLM) are closest to a target dataset, which
source datasets are closest to a target. Labels are ``dataset:NAME`` and ``model:NAME`` as in
``similarity.csv``; a bare name is accepted when it names exactly one embedding. A model whose
name holds a ``/`` is a prompt of an LLM (``LLM/PROMPT``, as the configuration's ``prompts`` expand).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fute_kit.embedding import Space, TaskEmbedding
from fute_kit.errors import DataError
from fute_kit.prompts import in_candidate_set, is_prompt, llm_of, split_label
from fute_kit.similarity import SimilarityMatrix, default_metric_for, similarity_matrix
from fute_kit.store import EmbeddingStore
from fute_kit.study_folder import StudyFolder


class UnknownSubjectError(DataError, KeyError):
    """A target or candidate name that no stored embedding has (a ``KeyError``, as lookups are)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# -- names ---------------------------------------------------------------------------------------
def resolve_label(name: str, labels: Sequence[str], what: str = "target", where: str = "") -> str:
    """The label ``name`` refers to: an exact label, or a bare name that only one embedding has."""
    if name in labels:
        return name
    place = f" in {where}" if where else ""
    kind, subject = split_label(name)
    if not (kind in ("dataset", "model") and subject):
        matches = [label for label in labels if split_label(label)[1] == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            both = " and ".join(matches)
            raise DataError(f"{what} {name!r} is ambiguous{place}: it names {both}; write one of those")
        subject = name
    subjects = {split_label(label)[1]: label for label in labels}
    close = difflib.get_close_matches(name, list(labels), n=3, cutoff=0.5)
    close += [subjects[s] for s in difflib.get_close_matches(subject, list(subjects), n=3, cutoff=0.5)]
    close = list(dict.fromkeys(close))[:3]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownSubjectError(f"{what} {name!r} is not among the {len(labels)} stored embeddings{place}{hint}")


# -- a finished study folder ------------------------------------------------------------------------
@attrs.frozen(eq=False)
class Study:
    """What a finished study folder holds: its embeddings (one per label), matrix and summary."""

    out_dir: Path
    space: Space
    embeddings: tuple[TaskEmbedding, ...]
    similarity: SimilarityMatrix | None = None
    metric: dict[str, Any] = attrs.field(factory=dict)
    summary: dict[str, Any] = attrs.field(factory=dict)

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.embeddings]

    def embedding(self, label: str) -> TaskEmbedding:
        for e in self.embeddings:
            if e.label == label:
                return e
        raise UnknownSubjectError(f"no embedding {label!r} in {self.out_dir}")


def open_store(path: str | Path) -> EmbeddingStore:
    """An embeddings folder, given either itself or the study folder above it."""
    folder = StudyFolder(path)
    if not folder.path.exists():
        raise DataError(f"{folder.path} does not exist: give a study folder (fute run --out) or its embeddings folder")
    return folder.readable_store()


def choose_space(store: EmbeddingStore, space_id: str | None = None, preferred: str | None = None) -> Space:
    """The space to work in: the one asked for, the study's own, or the only one stored."""
    spaces = store.spaces()
    if not spaces:
        raise DataError(f"no embeddings in {store.root}: run `fute run CONFIG --out DIR` first")
    by_id = {s.id: s for s in spaces}
    wanted = space_id or (preferred if preferred in by_id else None)
    if wanted is not None:
        if wanted not in by_id:
            ids = ", ".join(f"{s.id} ({s.describe()})" for s in spaces)
            raise DataError(f"space {wanted!r} is not in {store.root}; stored spaces: {ids}")
        return by_id[wanted]
    if len(spaces) > 1:
        ids = ", ".join(f"{s.id} ({s.describe()})" for s in spaces)
        raise DataError(f"{store.root} holds {len(spaces)} spaces; choose one with --space: {ids}")
    return spaces[0]


def latest_per_label(embeddings: Iterable[TaskEmbedding], keep: Mapping[str, str] | None = None) -> list[TaskEmbedding]:
    """One embedding per label: the fingerprint in ``keep`` (a study's jobs) if stored, else the newest.

    A store can hold several embeddings of one subject (the data changed between runs); only one
    of them may stand for the subject in a ranking.
    """
    chosen: dict[str, TaskEmbedding] = {}
    for e in embeddings:
        current = chosen.get(e.label)
        wanted = (keep or {}).get(e.label)
        if current is None:
            chosen[e.label] = e
        elif wanted is not None:
            if e.provenance.data_fingerprint == wanted:
                chosen[e.label] = e
        elif e.provenance.created >= current.provenance.created:
            chosen[e.label] = e
    return list(chosen.values())


def open_study(path: str | Path, space_id: str | None = None, *, need_embeddings: bool = True) -> Study:
    """Read a study folder (``fute run --out``) or a bare embeddings folder."""
    folder = StudyFolder(path)
    store = open_store(folder.path)
    summary = folder.summary()
    study_space = (summary.get("space") or {}).get("id")
    space = choose_space(store, space_id, study_space)
    keep = {
        f"{job['kind']}:{job['name']}": job["fingerprint"]
        for job in summary.get("jobs", [])
        if job.get("status") != "failed" and job.get("fingerprint")
    }
    embeddings = latest_per_label(store.load_all(space.id), keep if space.id == study_space else None)
    if need_embeddings and not embeddings:
        raise DataError(f"no embeddings of space {space.id} in {store.root}")
    matrix = None
    metric = (summary.get("metric") or {}) if space.id == study_space else {}
    if folder.similarity_csv.is_file() and space.id == study_space:
        matrix = SimilarityMatrix.from_csv(folder.similarity_csv, metric.get("name", ""))
    return Study(folder.path, space, tuple(embeddings), matrix, dict(metric), summary)


# -- ranking ------------------------------------------------------------------------------------
@attrs.frozen
class RankedCandidate:
    rank: int
    label: str
    similarity: float

    @property
    def kind(self) -> str:
        return split_label(self.label)[0]

    @property
    def subject(self) -> str:
        return split_label(self.label)[1]


@attrs.frozen
class Ranking:
    """Candidates by decreasing similarity to one target (ties keep the store's order)."""

    target: str
    candidates: tuple[RankedCandidate, ...]
    metric: str = ""
    metric_options: dict[str, Any] = attrs.field(factory=dict)
    space: Space | None = None

    def labels(self) -> list[str]:
        return [c.label for c in self.candidates]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "space": self.space.to_dict() if self.space else None,
            "metric": {"name": self.metric, "options": self.metric_options},
            "candidates": [
                {"rank": c.rank, "label": c.label, "kind": c.kind, "subject": c.subject, "similarity": c.similarity}
                for c in self.candidates
            ],
        }

    def table(self) -> str:
        width = max([9, *(len(c.subject) for c in self.candidates)])
        lines = [f"{'rank':>4}  {'similarity':>10}  {'kind':<7}  {'candidate':<{width}}"]
        lines += [f"{c.rank:>4}  {c.similarity:>10.4f}  {c.kind:<7}  {c.subject:<{width}}" for c in self.candidates]
        return "\n".join(line.rstrip() for line in lines)


def rank_in_matrix(matrix: SimilarityMatrix, target: str, candidates: str = "all", top: int | None = None) -> Ranking:
    """Rank the other labels of a similarity matrix by their similarity to ``target``."""
    target = resolve_label(target, matrix.labels)
    row = matrix.values[matrix.labels.index(target)]
    chosen = [i for i, label in enumerate(matrix.labels) if label != target and in_candidate_set(label, candidates)]
    if not chosen and candidates.startswith("prompts:"):
        llms = sorted({llm_of(label) for label in matrix.labels if is_prompt(label)})
        raise DataError(
            f"no prompts of LLM {candidates.removeprefix('prompts:')!r} here; "
            f"LLMs with prompts: {', '.join(llms) or 'none'}"
        )
    if not chosen:
        raise DataError(
            f"no {candidates} to rank against {target!r}: the store holds only "
            f"{', '.join(label for label in matrix.labels if label != target) or 'the target itself'}"
        )
    order = sorted(chosen, key=lambda i: -row[i])  # stable: ties keep the stored order
    if top is not None:
        order = order[: max(0, top)]
    ranked = tuple(RankedCandidate(r + 1, matrix.labels[i], float(row[i])) for r, i in enumerate(order))
    return Ranking(target, ranked, matrix.metric)


def rank_candidates(
    target: str,
    embeddings: Sequence[TaskEmbedding],
    candidates: str = "all",
    *,
    metric: str | None = None,
    metric_options: Mapping[str, Any] | None = None,
    top: int | None = None,
    registry: Any = None,
) -> Ranking:
    """Rank embeddings of one space by similarity to ``target`` (a label or an unambiguous bare name).

    The similarity is computed over the whole collection (centred metrics depend on it) with the
    metric given, or the one the space's method declares.
    """
    from fute_kit.registry import get_registry

    if not embeddings:
        raise DataError("no embeddings to rank: the store is empty")
    in_candidate_set("", candidates)  # validate the set name before any work
    labels = [e.label for e in embeddings]
    resolve_label(target, labels)
    registry = registry or get_registry()
    if metric is None:
        metric, declared = default_metric_for(embeddings[0].space.method, registry, embeddings[0].space.options)
        metric_options = {**declared, **dict(metric_options or {})}
    options = dict(metric_options or {})
    matrix = similarity_matrix(list(embeddings), metric, options, registry=registry)
    ranking = rank_in_matrix(matrix, target, candidates, top)
    return attrs.evolve(ranking, metric=metric, metric_options=options, space=embeddings[0].space)


def rank_study(
    target: str,
    path: str | Path,
    candidates: str = "all",
    *,
    space_id: str | None = None,
    metric: str | None = None,
    metric_options: Mapping[str, Any] | None = None,
    top: int | None = None,
    registry: Any = None,
) -> Ranking:
    """``rank_candidates`` over a study folder; without a metric, the study's own metric is used."""
    study = open_study(path, space_id)
    if metric is None and study.metric.get("name"):
        metric = study.metric["name"]
        metric_options = {**dict(study.metric.get("options") or {}), **dict(metric_options or {})}
    return rank_candidates(
        target,
        study.embeddings,
        candidates,
        metric=metric,
        metric_options=metric_options,
        top=top,
        registry=registry,
    )
