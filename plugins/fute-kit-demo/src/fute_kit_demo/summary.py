"""The demo's printed summary: which dataset each model's MTE is nearest, counted per kind of model.

Classifiers should find their own dataset; the controls (shuffled labels, random head, label prior) should find
nothing; each prompt should find its genre's dataset, and among a genre's prompts the one nearest the dataset
should be the one measured most accurate on it.
"""

from __future__ import annotations

from typing import Any

import attrs

from fute_kit_demo.prompts import genre_of

# model-name prefix -> the kind shown in the summary, in the order shown
KINDS: tuple[tuple[str, str], ...] = (
    ("classifier-", "classifiers"),
    ("shuffled-", "shuffled-labels controls"),
    ("random-head-", "random-head controls"),
    ("prior-", "prior-only controls"),
)
PROMPTS_KIND = "prompts"


@attrs.frozen
class Nearest:
    """One model's nearest dataset and how far its own dataset is ahead of (or behind) the best other one."""

    model: str
    kind: str
    own: str | None  # the dataset (or, for a prompt, its genre's dataset) the model was made for
    nearest: str | None  # None when several datasets tie (a zero embedding ties them all)
    similarity: float
    own_similarity: float | None  # similarity to its own dataset
    margin: float | None  # similarity to its own dataset minus the best other dataset's

    @property
    def hit(self) -> bool:
        return self.own is not None and self.nearest == self.own


def kind_and_own(model: str) -> tuple[str, str | None]:
    for prefix, kind in KINDS:
        if model.startswith(prefix):
            return kind, model.removeprefix(prefix)
    if "/" in model:
        try:
            return PROMPTS_KIND, genre_of(model.split("/", 1)[1])
        except KeyError:
            pass
    return "other", None


def nearest_datasets(matrix: Any) -> list[Nearest]:
    datasets = [label.removeprefix("dataset:") for label in matrix.labels if label.startswith("dataset:")]
    rows = []
    for label in matrix.labels:
        if not label.startswith("model:"):
            continue
        model = label.removeprefix("model:")
        kind, own = kind_and_own(model)
        sims = {d: float(matrix.get(label, f"dataset:{d}")) for d in datasets}
        best = max(sims, key=sims.__getitem__)
        unique = sum(v == sims[best] for v in sims.values()) == 1
        own_similarity = sims.get(own) if own else None
        margin = None
        if own_similarity is not None and len(sims) > 1:
            margin = own_similarity - max(v for d, v in sims.items() if d != own)
        rows.append(Nearest(model, kind, own, best if unique else None, sims[best], own_similarity, margin))
    return rows


def kind_line(kind: str, rows: list[Nearest]) -> str:
    hits = sum(r.hit for r in rows)
    margins = [r.margin for r in rows if r.margin is not None]
    if rows and all(r.nearest is None and r.similarity == 0 for r in rows):
        return f"- {kind}: {hits}/{len(rows)} (zero embeddings: the contrast removes a constant model by construction)"
    mean = f", mean margin {sum(margins) / len(margins):+.3f}" if margins else ""
    return f"- {kind}: {hits}/{len(rows)} nearest their own dataset{mean}"


def prompt_choice_lines(rows: list[Nearest], accuracies: dict[str, float]) -> list[str]:
    """Per genre: the prompt nearest the dataset vs the prompt measured most accurate on it."""
    lines = []
    genres = sorted({r.own for r in rows if r.kind == PROMPTS_KIND and r.own})
    agree = 0
    for genre in genres:
        prompts = [r for r in rows if r.kind == PROMPTS_KIND and r.own == genre]
        if not all(r.model in accuracies and r.own_similarity is not None for r in prompts):
            continue
        picked = max(prompts, key=lambda r: r.own_similarity or 0.0)
        best = max(prompts, key=lambda r: accuracies[r.model])
        agree += picked.model == best.model
        lines.append(
            f"  {genre}: nearest {picked.model} (accuracy {accuracies[picked.model]:.2f}); "
            f"most accurate {best.model} ({accuracies[best.model]:.2f})"
        )
    if lines:
        picks = f"{agree}/{len(lines)} genres"
        lines.insert(0, f"- prompt choice: the embedding picks the most accurate prompt for {picks}")
    return lines


def summarise(matrix: Any, accuracies: dict[str, float] | None = None) -> str:
    """Counts per kind of model, the prompt choice per genre, then one row per model."""
    if matrix is None:
        return "no embeddings were computed"
    accuracies = accuracies or {}
    rows = nearest_datasets(matrix)
    lines = ["Nearest dataset of each model's MTE (a hit: its own dataset; prompts: their genre's dataset):"]
    for kind in [k for _, k in KINDS] + [PROMPTS_KIND]:
        of_kind = [r for r in rows if r.kind == kind]
        if of_kind:
            lines.append(kind_line(kind, of_kind))
    lines.extend(prompt_choice_lines(rows, accuracies))
    lines += ["", "| model | nearest dataset | similarity | own dataset | margin | measured accuracy |"]
    lines.append("|---|---|---|---|---|---|")
    for r in rows:
        own = "" if r.own is None else ("yes" if r.hit else f"no ({r.own})")
        margin = "" if r.margin is None else f"{r.margin:+.3f}"
        accuracy = f"{accuracies[r.model]:.2f}" if r.model in accuracies else ""
        nearest = r.nearest or "(none: a tie)"
        lines.append(f"| {r.model} | {nearest} | {r.similarity:.3f} | {own} | {margin} | {accuracy} |")
    return "\n".join(lines) + "\n"
