"""Centred kernel alignment (Kornblith et al. 2019) for matrix-shaped embeddings with the same number of rows.

X (n x d1) and Y (n x d2) are compared row by row (prompt position, layer, component...): CKA is the
normalised inner product of their centred n x n kernel (Gram) matrices. Everything runs in float64 on
centred features; vectors are n x 1 matrices. An all-constant input has no variance: its CKA is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, option

# Largest stack of n x n Gram matrices held at once (float64 numbers): 512 MB.
_GRAM_BUDGET = 2**26


def _as_matrix(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.size == 0:
        raise DataError(f"cka: {what} has shape {np.shape(x)}; expected a vector or an n x d matrix")
    if not np.all(np.isfinite(a)):
        raise DataError(f"cka: {what} contains NaN or infinite values")
    return a - a.mean(axis=0)


def _check_rows(shapes: Sequence[tuple[int, ...]], names: Sequence[str]) -> int:
    n = shapes[0][0]
    for shape, name in zip(shapes, names, strict=True):
        if shape[0] != n:
            raise DataError(
                f"cka: {names[0]} has shape {shapes[0]} but {name} has shape {shape}; CKA compares matrices "
                "row by row, so they need the same number of rows (use cosine for embeddings of other shapes)"
            )
    return n


def _rbf_gram(x: np.ndarray, threshold: float) -> np.ndarray:
    dot = x @ x.T
    sq = np.diag(dot)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * dot, 0.0)
    np.fill_diagonal(d2, 0.0)
    # Bandwidth sigma = threshold x median distance; the median includes the zero diagonal (Kornblith et al.).
    median = np.median(d2)
    if median <= 0:  # most rows identical: fall back to the median of the distances that are not zero
        positive = d2[d2 > 0]
        median = float(np.median(positive)) if positive.size else 1.0
    return np.exp(-d2 / (2 * threshold**2 * median))


def _centre_gram(gram: np.ndarray, debiased: bool) -> np.ndarray:
    g = np.array(gram, dtype=np.float64)
    n = g.shape[0]
    if debiased:
        if n < 4:
            raise DataError(f"cka: debiased CKA needs at least 4 rows, got {n}; use debiased = false")
        # U-centring (Song et al. 2012): its inner product is an unbiased HSIC estimator (up to a constant).
        np.fill_diagonal(g, 0.0)
        means = g.sum(axis=0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        g -= means[:, None]
        g -= means[None, :]
        np.fill_diagonal(g, 0.0)
        return g
    means = g.mean(axis=0)
    means -= means.mean() / 2
    g -= means[:, None]
    g -= means[None, :]
    return g


def _normalised(inner: np.ndarray, self_norms: np.ndarray) -> np.ndarray:
    outer = np.outer(self_norms, self_norms)
    sim = np.divide(inner, outer, out=np.zeros_like(inner), where=outer > 0)
    return np.clip((sim + sim.T) / 2, -1.0, 1.0)


def _gram(x: np.ndarray, kernel: str, threshold: float) -> np.ndarray:
    return x @ x.T if kernel == "linear" else _rbf_gram(x, threshold)


def cka_matrix(
    arrays: Sequence[np.ndarray], kernel: str = "linear", threshold: float = 0.5, debiased: bool = False
) -> np.ndarray:
    """Pairwise CKA of a collection of n x d_i matrices (vectors count as n x 1)."""
    if len(arrays) == 0:
        raise DataError("cka: no embeddings to compare")
    xs = [_as_matrix(a, f"embedding {i}") for i, a in enumerate(arrays)]
    n = _check_rows([x.shape for x in xs], [f"embedding {i}" for i in range(len(xs))])
    if kernel == "linear" and not debiased and n > max(x.shape[1] for x in xs):
        # More rows than features: <K_X, K_Y> = ||X^T Y||_F^2 avoids n x n Gram matrices.
        self_norms = np.array([np.linalg.norm(x.T @ x) for x in xs])
        inner = np.zeros((len(xs), len(xs)))
        for i, x in enumerate(xs):
            for j in range(i, len(xs)):
                inner[i, j] = inner[j, i] = np.sum((x.T @ xs[j]) ** 2)
        return _normalised(inner, self_norms)
    if len(xs) * n * n > _GRAM_BUDGET:
        raise DataError(
            f"cka: {len(xs)} embeddings with {n} rows need {len(xs)} Gram matrices of {n} x {n}, too large; "
            "use kernel = 'linear' with debiased = false, or fewer rows"
        )
    grams = np.stack([_centre_gram(_gram(x, kernel, threshold), debiased).reshape(-1) for x in xs])
    inner = grams @ grams.T
    return _normalised(inner, np.sqrt(np.maximum(np.diag(inner), 0.0)))


def linear_cka(X: np.ndarray, Y: np.ndarray, debiased: bool = False) -> float:
    """Linear CKA of X (n x d1) and Y (n x d2); vectors count as n x 1."""
    return float(cka_matrix([X, Y], "linear", debiased=debiased)[0, 1])


def rbf_cka(X: np.ndarray, Y: np.ndarray, threshold: float = 0.5, debiased: bool = False) -> float:
    """RBF-kernel CKA, bandwidth = threshold x median pairwise distance (zero diagonal included)."""
    if threshold <= 0:
        raise DataError(f"rbf_cka: threshold must be > 0, got {threshold}")
    return float(cka_matrix([X, Y], "rbf", threshold=threshold, debiased=debiased)[0, 1])


@attrs.frozen
class CKAMetric:
    """Centred kernel alignment of matrix embeddings with the same number of rows (linear or RBF)."""

    name = "cka"

    kernel: Literal["linear", "rbf"] = option(
        "linear", help="linear, or rbf (Gaussian kernel)", validator=attrs.validators.in_(("linear", "rbf"))
    )
    debiased: bool = option(False, help="unbiased HSIC estimator: use when rows are few relative to features")
    threshold: float = option(
        0.5, help="RBF bandwidth as a fraction of the median pairwise distance", validator=attrs.validators.gt(0)
    )

    def matrix(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        return cka_matrix(arrays, self.kernel, threshold=float(self.threshold), debiased=self.debiased)
