"""Calibrating the soft labels of prompted models: their label words come with a bias of their own.

A prompted LLM often prefers one label word whatever the text ("positive" to nearly everything). Batch
calibration (Zhou et al., 2024, "Batch Calibration: Rethinking Calibration for In-Context Learning and
Prompt Engineering") estimates that bias as each class's mean probability over the inputs themselves and
divides it out, so no extra request or content-free input is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

if TYPE_CHECKING:
    from fute_kit.components import RunContext

Calibration = Literal["none", "batch"]
CALIBRATIONS: tuple[str, ...] = get_args(Calibration)
CALIBRATION_HELP = (
    "'batch': divide each class's probability by its mean over the inputs (U) and renormalise (batch "
    "calibration): removes a prompt's bias towards one label word; 'none': the label words' probabilities as read"
)


def calibrate(probabilities: np.ndarray, how: str) -> tuple[np.ndarray, list[float]]:
    """(calibrated rows, the bias divided out: mean probability per class) for an (n, classes) array.

    A class no input gives any probability stays at zero; a row left all zero (only such classes) stays as it was.
    """
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
