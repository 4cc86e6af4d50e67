"""The null task's side of a contrast, computed once and shared by every subject with the same null task.

With the default contrast a method trains the surrogate twice: on the task, and on its null task (the same
texts labelled with the labels' prior, :func:`fute_kit_hf.targets.prior_targets`). The null side depends on the
texts and the prior, not on which labels produced that prior: the MTEs of a study (all on U) and a
shuffled-labels control with its dataset have the same null task. It is kept in the run's cache folder
(``<cache>/null-task/<method>/<key>.npz``) under a key of everything that determines it:

- the surrogate: its resolved path, family, configuration, a digest of its weights, the device type;
- the texts as tokenised (every input id, in order, and the length budget) and the null targets' bytes;
- every training setting and every method option (taken from the attrs objects, so a new option is keyed
  without anyone listing it; ``device`` is replaced by the device actually used);
- the package versions and a digest of the sources of ``fute_kit_hf`` and the method's package (an edit
  that could change a result invalidates what was cached before it).

A hit skips the second training (and, for taskemb, the second Fisher pass): the result is bit-identical to
recomputing it. Files are written atomically (a temporary file renamed over the target), so a writer killed
mid-write leaves no partial file, and two jobs computing the same key at once both write a complete file
(identical contents; the last rename wins). A file that does not read back (corrupt, truncated by a copy,
another shape) is ignored, recomputed and rewritten.

Sharing is exact: only subjects with the same prior's bytes share. ``round_prior`` puts a prior on a grid, for
an option that would round it *before* the null task is trained (so the MTEs of different models on one U share
one null task, and results never depend on which subject ran first); no method uses it yet: docs/benchmarks.md,
"Sharing the null task", has the measurement that supports it and what wiring it in needs.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import weakref
import zipfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from fute_kit.plugin import RunContext, atomic_write_bytes, canonical_json

if TYPE_CHECKING:
    from fute_kit_hf.surrogate import Surrogate, Tokenized
    from fute_kit_hf.targets import Targets

log = logging.getLogger("fute_kit")

NULL_TASK_FOLDER = "null-task"
KEY_FORMAT = 1  # raise when the meaning of a cached file changes
_WEIGHTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def round_prior(null: Targets, step: float) -> Targets:
    """The null targets with their prior on a grid of ``step`` (0: unchanged); class priors still sum to 1.

    Class priors are rounded by largest remainder when ``1 / step`` is a whole number (so they stay on the grid
    and sum to 1), otherwise to the nearest multiple and renormalised. The prior is kept exact when a class that
    occurs would round to 0 (a rare class, many classes, a coarse step). Regression null targets are all zeros.
    """
    import torch

    from fute_kit_hf.targets import Targets

    if step <= 0 or null.loss not in ("soft-ce", "bce"):
        return null
    prior = null.values[0].double()
    units = 1.0 / step
    if null.loss == "soft-ce" and abs(units - round(units)) < 1e-9:
        total = round(units)
        scaled = prior * total
        grid = scaled.floor()
        order = torch.argsort(grid - scaled, stable=True)  # largest remainder first
        grid[order[: int(total - grid.sum().item())]] += 1
        grid = grid / total
    else:
        grid = (prior / step).round() * step
        if null.loss == "soft-ce" and float(grid.sum()) > 0:
            grid = grid / grid.sum()
    if bool(((grid <= 0) & (prior > 0)).any()):
        return null
    grid = grid.clamp(0.0, 1.0).to(null.values.dtype)
    return Targets(grid.expand(null.values.shape[0], -1).clone(), null.loss, null.num_outputs)


def null_task_key(method: Any, model: Surrogate, tokenized: Tokenized, null: Targets, settings: Any) -> str:
    """The content address of a null task's result: everything that determines it (the module's docstring)."""
    from fute_kit_hf.precision import resolve_precision

    options = {k: v for k, v in attrs.asdict(method, recurse=False).items() if k != "device"}
    if "precision" in options:  # 'auto' means different arithmetic on different machines sharing one cache
        options["precision"] = resolve_precision(options["precision"], model.device)
    parts = {
        "format": KEY_FORMAT,
        "method": getattr(method, "name", type(method).__name__),
        "options": options,
        "settings": attrs.asdict(settings, recurse=False),
        "surrogate": surrogate_identity(model),
        "texts": tokenized_digest(tokenized),
        "null": targets_digest(null),
        "code": code_identity(type(method).__module__.split(".")[0]),
    }
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()[:32]


def surrogate_identity(model: Surrogate) -> dict[str, Any]:
    config = model.backbone.config.to_json_string(use_diff=False) if hasattr(model.backbone, "config") else ""
    return {
        "path": str(model.path),
        "family": model.family,
        "config": hashlib.sha256(config.encode()).hexdigest(),
        "weights": weights_digest(model.backbone),
        "device": getattr(model.device, "type", str(model.device)),
    }


def weights_digest(module: Any) -> str:
    """A digest of every parameter and buffer (names, dtypes, shapes, bytes); once per loaded model."""
    if module in _WEIGHTS:
        return _WEIGHTS[module]
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    _WEIGHTS[module] = digest.hexdigest()
    return _WEIGHTS[module]


def tokenized_digest(tokenized: Tokenized) -> str:
    digest = hashlib.sha256(f"max_length={tokenized.max_length}|n={len(tokenized)}|".encode())
    digest.update(tokenized.lengths.tobytes())
    for ids in (tokenized.input_ids, tokenized.token_type_ids or ()):
        digest.update(np.fromiter((i for row in ids for i in row), dtype=np.int64).tobytes())
    digest.update(np.asarray(tokenized.truncated_mask, dtype=bool).tobytes())
    return digest.hexdigest()


def targets_digest(targets: Targets) -> str:
    values = targets.values.detach().to("cpu").contiguous()
    digest = hashlib.sha256(f"{targets.loss}|{targets.num_outputs}|{values.dtype}|{tuple(values.shape)}|".encode())
    digest.update(values.numpy().tobytes())
    return digest.hexdigest()


@functools.cache
def code_identity(package: str) -> dict[str, str]:
    """Versions of the packages involved and a digest of the sources of fute_kit_hf and ``package``."""
    import importlib

    versions = {}
    for dist in ("fute-kit", "fute-kit-hf", "torch", "transformers"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    digest = hashlib.sha256()
    for name in sorted({"fute_kit_hf", package}):
        folder = Path(importlib.import_module(name).__file__ or "").parent
        for source in sorted(folder.rglob("*.py")):
            digest.update(f"{source.relative_to(folder)}|".encode())
            digest.update(source.read_bytes())
    return {**versions, "sources": digest.hexdigest()}


@attrs.frozen
class NullTaskCache:
    """Null-side arrays by key, one ``.npz`` file each (its CRC catches corruption on reading)."""

    folder: Path

    @classmethod
    def of(cls, context: RunContext, method: str) -> NullTaskCache:
        return cls(Path(context.cache_dir) / NULL_TASK_FOLDER / method)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
        """The cached array, or None when absent or unreadable (corrupt, partial, another key or shape)."""
        path = self.path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                array, stored_key = stored["null"], str(stored["key"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("null-task cache file %s is unreadable (%s): recomputing it", path, exc)
            return None
        if stored_key != key or (shape is not None and tuple(array.shape) != tuple(shape)):
            log.warning("null-task cache file %s holds another key or shape: recomputing it", path)
            return None
        return array

    def store(self, key: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, null=array, key=np.array(key))
        atomic_write_bytes(self.path(key), buffer.getvalue())


def shared_null(
    context: RunContext, method: str, key: str, compute: Callable[[], np.ndarray], shape: tuple[int, ...] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The null side from the cache when another subject already computed it, else ``compute()`` it and keep it.

    The details say which (``null_task_reused``) and under which key, for the embedding's provenance.
    """
    cache = NullTaskCache.of(context, method)
    cached = cache.load(key, shape)
    if cached is not None:
        return cached, {"null_task_reused": True, "null_task_key": key}
    array = np.asarray(compute())
    cache.store(key, array)
    return array, {"null_task_reused": False, "null_task_key": key}
