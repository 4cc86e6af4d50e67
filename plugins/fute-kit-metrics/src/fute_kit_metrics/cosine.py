"""Cosine similarity of task embeddings: plain, per-component normalised, Task2Vec-normalised, centred."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, option

Normalize = Literal["none", "component", "task2vec"]


def _check_reference(instance: CosineMetric, attribute: attrs.Attribute, value: str | None) -> None:
    if instance.center == "reference":
        if value is None:
            raise ValueError('reference: center = "reference" needs reference = "path/to/mean.npy" (or .safetensors)')
        if Path(value).suffix not in (".npy", ".safetensors"):
            raise ValueError(f"reference: {value!r} must be a .npy or .safetensors file")
        if not Path(value).is_file():
            raise ValueError(f"reference: file {value!r} does not exist; write one with save_reference_mean()")
    elif value is not None:
        raise ValueError(f'reference: only used with center = "reference" (center is {instance.center!r}); remove it')


def _check_combination(instance: CosineMetric, attribute: attrs.Attribute, value: str) -> None:
    if value != "none" and instance.normalize == "task2vec":
        # Task2Vec's normalisation depends on the pair compared, so there is no single space to centre in.
        raise ValueError(f'center: {value!r} cannot be combined with normalize = "task2vec"; use center = "none"')


@attrs.frozen
class CosineMetric:
    """Cosine similarity of flattened embeddings, optionally normalised per component and/or centred."""

    name = "cosine"

    normalize: Literal["none", "component", "task2vec"] = option(
        "none",
        help='"component": L2-normalise each row of a matrix embedding (TaskEmb); '
        '"task2vec": cos(a/(a+b), b/(a+b)) for non-negative Fisher vectors',
        validator=attrs.validators.in_(("none", "component", "task2vec")),
    )
    center: Literal["none", "collection", "reference"] = option(
        "none",
        help='subtract the mean embedding: "collection" (of the compared items, at least 3) or "reference" (a file)',
        validator=[attrs.validators.in_(("none", "collection", "reference")), _check_combination],
    )
    reference: str | None = option(
        None,
        help='.npy or .safetensors file holding the mean embedding, for center = "reference"',
        validator=_check_reference,
    )
    pool: Literal["none", "mean"] = option(
        "none",
        help='"mean": average the rows of a matrix embedding first (a tuned prompt\'s mean over positions, '
        "which does not depend on which start vector each position had)",
        validator=attrs.validators.in_(("none", "mean")),
    )

    def matrix(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        flat = self.prepare(arrays)
        if self.normalize == "task2vec":
            return _task2vec_matrix(flat)
        if self.center == "collection":
            if len(flat) < 3:
                raise DataError(
                    f'cosine with center = "collection" needs at least 3 embeddings, got {len(flat)} '
                    '(centring two makes them antipodal); use center = "reference" or "none"'
                )
            flat = flat - flat.mean(axis=0)
        elif self.center == "reference":
            flat = flat - self._reference_mean(arrays)
        return _cosine_matrix(flat)

    def prepare(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The embeddings normalised (except Task2Vec's pairwise step) and flattened: one float64 row each."""
        if len(arrays) == 0:
            raise DataError("cosine: no embeddings to compare")
        rows = []
        for i, array in enumerate(arrays):
            a = np.asarray(array, dtype=np.float64)
            if a.ndim == 0 or a.size == 0:
                raise DataError(f"cosine: embedding {i} has shape {a.shape}; expected a vector or a matrix")
            if not np.all(np.isfinite(a)):
                raise DataError(f"cosine: embedding {i} contains NaN or infinite values")
            if self.pool == "mean" and a.ndim > 1:
                a = a.reshape(a.shape[0], -1).mean(axis=0)
            if self.normalize == "component":
                a = _unit_rows(a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1))
            elif self.normalize == "task2vec" and a.min() < 0:
                raise DataError(
                    f'cosine: normalize = "task2vec" needs non-negative (Fisher) values, embedding {i} has '
                    f'minimum {a.min():.3g}; use normalize = "none" or "component"'
                )
            rows.append(a.reshape(-1))
        sizes = {r.size for r in rows}
        if len(sizes) > 1:
            shapes = ", ".join(f"{i}: {np.shape(a)}" for i, a in enumerate(arrays))
            raise DataError(f"cosine: embeddings differ in size ({shapes}); compare embeddings of one space")
        return np.stack(rows)

    def reference_mean(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The mean of a collection in this metric's normalised space: what ``reference`` files hold."""
        return self.prepare(arrays).mean(axis=0)

    def _reference_mean(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        assert self.reference is not None
        path = Path(self.reference)
        if path.suffix == ".npy":
            mean = np.load(path, allow_pickle=False)
        else:
            from safetensors.numpy import load_file

            tensors = load_file(str(path))
            if "mean" in tensors:
                mean = tensors["mean"]
            elif len(tensors) == 1:
                mean = next(iter(tensors.values()))
            else:
                raise DataError(
                    f"cosine reference {path}: holds {sorted(tensors)}; expected one tensor or one named 'mean'"
                )
        mean = np.asarray(mean, dtype=np.float64)
        expected = np.asarray(arrays[0]).shape
        if mean.shape not in (expected, (int(np.prod(expected)),)):
            raise DataError(
                f"cosine reference {path}: mean of shape {mean.shape} does not fit embeddings of shape {expected}; "
                "write the reference from embeddings of this space with save_reference_mean()"
            )
        return mean.reshape(-1)


def save_reference_mean(path: str | Path, arrays: Sequence[np.ndarray], normalize: Normalize = "none") -> np.ndarray:
    """Write the mean of ``arrays`` (after ``normalize``) to a .npy or .safetensors file, atomically.

    Use the same ``normalize`` as the metric that will read it with ``center = "reference"``.
    """
    from fute_kit.plugin import atomic_write_bytes

    if normalize == "task2vec":
        raise DataError('save_reference_mean: normalize = "task2vec" cannot be centred; use "none" or "component"')
    mean = CosineMetric(normalize=normalize).reference_mean(arrays)
    target = Path(path)
    if target.suffix == ".safetensors":
        from safetensors.numpy import save

        atomic_write_bytes(target, save({"mean": np.ascontiguousarray(mean)}))
    elif target.suffix == ".npy":
        import io

        buffer = io.BytesIO()
        np.save(buffer, mean, allow_pickle=False)
        atomic_write_bytes(target, buffer.getvalue())
    else:
        raise DataError(f"save_reference_mean: {target} must end in .npy or .safetensors")
    return mean


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    # All-zero rows stay zero instead of becoming NaN.
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def _cosine_matrix(flat: np.ndarray) -> np.ndarray:
    unit = _unit_rows(flat)
    sim = unit @ unit.T
    return np.clip((sim + sim.T) / 2, -1.0, 1.0)


def _task2vec_matrix(flat: np.ndarray) -> np.ndarray:
    """Task2Vec's normalised cosine, cos(a/(a+b), b/(a+b)), one row of pairs at a time."""
    n = len(flat)
    sim = np.zeros((n, n))
    for i in range(n):
        a, b = flat[i], flat[i:]
        # Task2Vec adds 1e-8 to a+b; that constant would swamp TaskEmb's tiny model-side Fisher values
        # (1e-10 and below), so divide where a+b > 0 and give 0 elsewhere (the epsilon -> 0 limit).
        total = a + b
        pa = np.divide(a, total, out=np.zeros_like(total), where=total > 0)
        pb = np.divide(b, total, out=np.zeros_like(total), where=total > 0)
        norms = np.linalg.norm(pa, axis=1) * np.linalg.norm(pb, axis=1)
        dots = np.einsum("ij,ij->i", pa, pb)
        sim[i, i:] = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    sim = np.triu(sim) + np.triu(sim, 1).T
    return np.clip(sim, -1.0, 1.0)
