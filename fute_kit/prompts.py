"""Prompts of an LLM as models: how a configuration lists them, how labels name them, how their labels are calibrated.

A configuration lists many prompts of one LLM in one ``[[models]]`` entry (``prompts = {name = template}``);
each becomes a model named ``LLM/PROMPT``. Embeddings are labelled ``dataset:NAME`` or ``model:NAME`` (as in
``similarity.csv``), so a prompt is a ``model:`` label whose name holds a ``/``, and the candidate set
``prompts`` selects exactly those.

A prompted LLM often prefers one label word whatever the text ("positive" to nearly everything). Batch
calibration (Zhou et al., 2024, "Batch Calibration: Rethinking Calibration for In-Context Learning and
Prompt Engineering") estimates that bias as each class's mean probability over the inputs themselves and
divides it out, so no extra request or content-free input is needed.

numpy is imported inside the functions: ``fute --help`` imports this module for the candidate sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args

from fute_kit.errors import DataError

if TYPE_CHECKING:
    import numpy as np

    from fute_kit.components import RunContext

PROMPT_SEPARATOR = "/"
CandidateSet = Literal["datasets", "models", "prompts", "all"]
CANDIDATE_SETS: tuple[str, ...] = get_args(CandidateSet)
Calibration = Literal["none", "batch"]
CALIBRATIONS: tuple[str, ...] = get_args(Calibration)
CALIBRATION_HELP = (
    "'batch': divide each class's probability by its mean over the inputs (U) and renormalise (batch "
    "calibration): removes a prompt's bias towards one label word; 'none': the label words' probabilities as read"
)


# -- in the configuration ---------------------------------------------------------------------------
def expand_prompts(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """``prompts = {name = template | {prompt = ..., ...}}`` lists many prompts of one LLM in one entry."""
    prompts = entry.get("prompts")
    if not isinstance(prompts, Mapping):
        return [entry]
    base = {k: v for k, v in entry.items() if k != "prompts"}
    expanded = []
    for prompt_name, value in prompts.items():
        item = dict(base)
        item["name"] = f"{base.get('name', 'model')}{PROMPT_SEPARATOR}{prompt_name}"
        if isinstance(value, Mapping):
            item.update(value)
        else:
            item["prompt"] = value
        expanded.append(item)
    return expanded


# -- in labels --------------------------------------------------------------------------------------
def split_label(label: str) -> tuple[str, str]:
    """``dataset:NAME`` -> ("dataset", "NAME")."""
    kind, _, subject = label.partition(":")
    return kind, subject


def is_prompt(label: str) -> bool:
    """A model named ``LLM/PROMPT``: one prompt of an LLM."""
    kind, subject = split_label(label)
    return kind == "model" and PROMPT_SEPARATOR in subject


def llm_of(label: str) -> str:
    """The LLM a prompt's label belongs to: ``model:LLM/PROMPT`` -> ``LLM``."""
    return split_label(label)[1].split(PROMPT_SEPARATOR, 1)[0]


def in_candidate_set(label: str, candidates: str) -> bool:
    """Whether ``label`` is one of ``candidates``: a name of CANDIDATE_SETS, or ``prompts:LLM`` (one LLM's)."""
    kind, _ = split_label(label)
    if candidates.startswith("prompts:"):
        return is_prompt(label) and llm_of(label) == candidates.removeprefix("prompts:")
    if candidates == "datasets":
        return kind == "dataset"
    if candidates == "models":
        return kind == "model"
    if candidates == "prompts":
        return is_prompt(label)
    if candidates == "all":
        return True
    raise DataError(f"unknown candidate set {candidates!r}; choose one of {', '.join(CANDIDATE_SETS)}, or prompts:LLM")


# -- calibrating their soft labels ----------------------------------------------------------------
def calibrate(probabilities: np.ndarray, how: str) -> tuple[np.ndarray, list[float]]:
    """(calibrated rows, the bias divided out: mean probability per class) for an (n, classes) array.

    A class no input gives any probability stays at zero; a row left all zero (only such classes) stays as it was.
    """
    import numpy as np

    probs = np.asarray(probabilities, dtype=np.float64)
    bias = probs.mean(axis=0)
    if how == "none":
        return probs, bias.tolist()
    if how != "batch":
        raise ValueError(f"unknown calibration {how!r}; choose from {', '.join(CALIBRATIONS)}")
    scaled = np.divide(probs, bias, out=np.zeros_like(probs), where=bias > 0)
    totals = scaled.sum(axis=1, keepdims=True)
    calibrated = np.where(totals > 0, scaled / np.where(totals > 0, totals, 1.0), probs)
    return calibrated, bias.tolist()


def calibrate_and_record(probabilities: np.ndarray, how: str, context: RunContext) -> np.ndarray:
    """``calibrate``, with the method and the bias it divided out recorded in the run's provenance."""
    calibrated, bias = calibrate(probabilities, how)
    context.record("calibration", {"method": how, "mean_label": [round(b, 4) for b in bias]})
    return calibrated
