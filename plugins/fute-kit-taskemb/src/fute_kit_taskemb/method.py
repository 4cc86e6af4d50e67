"""The ``taskemb`` method: fine-tune the surrogate on the task, then take the Fisher of its activations.

The embedding is a (components x hidden) matrix: one row per transformer layer output, then the
pooled output (``components`` chooses). Rows differ in scale, so the default metric normalises each
row before the cosine (the plugin's README says why, with measurements).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from fute_kit.plugin import Examples, MethodResult, RunContext, option
from fute_kit_hf.surrogate_check import surrogate_problem
from fute_kit_hf.training import POSITIVE, TrainingOptions, training_option


@attrs.frozen
class TaskEmb(TrainingOptions):
    """Diagonal Fisher of the surrogate's layer outputs after fine-tuning on the task (Vu et al. 2020).

    The training options (epochs, learning_rate, ..., soft_loss, head_init) and their defaults are
    ``fute_kit_hf.training.TrainingOptions``'.
    """

    name: ClassVar[str] = "taskemb"
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("cosine", {"normalize": "component"})
    check_surrogate = staticmethod(surrogate_problem)  # an unknown alias or folder: exit 2 before any job
    size_dependent: ClassVar[bool] = True  # epochs x examples training steps: DTEs and MTEs of like sizes compare

    contrast: Literal["prior", "uniform", "none"] = option(
        "prior",
        help="'prior': subtract the row-normalised Fisher of the null task (the same texts labelled with the labels' "
        "prior; a second training and Fisher pass); 'uniform' (experimental): the null task's labels are uniform; "
        "'none': the raw Fisher, as the reference code",
    )
    components: Literal["both", "layers", "pooled"] = option(
        "both", help="which activations: every layer output, the pooled output, or both"
    )
    labels: Literal["empirical", "sampled"] = option(
        "empirical", help="Fisher labels: the data's own, or drawn from the model's predictive distribution"
    )
    reduction: Literal["exact", "reference"] = option(
        "exact",
        help="'exact': per-example squared gradients; 'reference' (experimental): squares of batch sums, as the "
        "reference code (depends on the batch size)",
    )
    fisher_batch_size: int = option(32, help="Fisher-pass batch size (no effect on exact results)", validator=POSITIVE)
    # bf16 where native: within seed noise of fp32 and faster (bench/RESULTS-embedding-speed.md); training and Fisher
    precision: Literal["auto", "fp32", "bf16"] = training_option("precision", "auto")
    # Together 3.2x faster per embedding, inside seed noise, and the section 1 table unchanged or better (12/12,
    # margin +0.190 at 400 texts; docs/benchmarks.md): grouped batches pad less, the null task stops once flat.
    batch_order: Literal["shuffle", "grouped"] = training_option("batch_order", "grouped")
    null_stop_loss: float = training_option("null_stop_loss", 0.01)
    seed: int = option(0, help="fixes head initialisation, data order, dropout and sampled labels")
    device: str = option("auto", help="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda' or 'cuda:N'")

    def __attrs_post_init__(self) -> None:
        choices = {
            "contrast": ("prior", "uniform", "none"),
            "components": ("both", "layers", "pooled"),
            "labels": ("empirical", "sampled"),
            "reduction": ("exact", "reference"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {getattr(self, key)!r}")

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        from fute_kit_hf.surrogate import load_surrogate
        from fute_kit_hf.targets import NULL_TASK_WARNING, is_null_task, learning_warnings, majority_rate, make_targets

        started = time.perf_counter()
        checked = make_targets(examples, self.soft_loss, "cpu")  # bad labels fail before the model loads
        if self.contrast != "none" and is_null_task(checked, uniform=self.contrast == "uniform"):
            return self._zero(examples, surrogate, started)
        model = load_surrogate(surrogate, self.device)
        targets = make_targets(examples, self.soft_loss, model.device)
        tokenized = model.tokenize(examples, self.max_length)
        settings = self.training_settings(self.seed, head_fit_batch_size=self.batch_size * 2, label="taskemb")
        progress = context.progress if context.show_progress else None
        train_details, fisher = self._fisher(model, tokenized, targets, settings, progress)
        array = fisher.array
        contrast_details: dict[str, Any] = {}
        if self.contrast != "none":
            array, contrast_details = self._contrast(
                model, tokenized, targets, settings, progress, fisher.array, context
            )
        details: dict[str, Any] = {
            "n": len(examples),
            "label_kind": examples.label_kind,
            "surrogate_family": model.family,
            "truncated": tokenized.truncated,
            "max_length": tokenized.max_length,
            **train_details,
            **fisher.details,
            **contrast_details,
        }
        details["majority_rate"] = majority_rate(targets)
        warnings = learning_warnings(details, details["majority_rate"])
        details["learned"] = not any(w.startswith("surrogate did not learn") for w in warnings)
        if tokenized.truncated:
            warnings.append(
                f"{tokenized.truncated} of {len(examples)} inputs were longer than {tokenized.max_length} tokens "
                "and were truncated (raise max_length to keep them whole)"
            )
        norms = np.linalg.norm(array, axis=1)
        if self.contrast != "none" and not np.any(norms):
            warnings.append(NULL_TASK_WARNING)
        elif np.any(norms == 0):
            zero = [fisher.row_names[i] for i in np.flatnonzero(norms == 0)]
            warnings.append(f"Fisher is zero for {', '.join(zero)}: per-component normalisation cannot use them")
        details["seconds"] = round(time.perf_counter() - started, 3)
        return MethodResult(array.astype(np.float32), details, warnings)

    def embed_group(self, items: Sequence[Examples], surrogate: str, context: RunContext) -> list[MethodResult]:
        """The embeddings of several subjects, one result per item in order, their trainings stacked.

        Every item's task (and, with the contrast, its null task) is fine-tuned as a member of one stack
        (``fute_kit_hf.stacked``: K copies of the surrogate in lock-step, each with its own data order,
        schedule and clipping), then each item goes through :meth:`embed`, whose Fisher pass uses the copy
        trained for it. Equal to one at a time within seed-level tolerance (dropout masks differ); made for a
        GPU, where one small surrogate leaves the device idle. Trainings that cannot be stacked (a decoder or
        T5 surrogate, early stopping, ``head_init="probe"``, a lone training) run one at a time, so the
        results are always complete. Every item's labels are checked before any training: a bad item raises
        its ``DataError`` then (a caller may embed the items one at a time to isolate it).
        """
        from fute_kit_taskemb.group import embed_group

        return embed_group(self, items, surrogate, context)

    def _zero(self, examples: Examples, surrogate: str, started: float) -> MethodResult:
        """The embedding of a null task: exactly zero, without training (it would be subtracted from itself)."""
        from fute_kit_hf.surrogate import load_surrogate
        from fute_kit_hf.targets import NULL_TASK_WARNING
        from fute_kit_taskemb.fisher import component_names

        model = load_surrogate(surrogate, self.device)  # only its shape is needed
        rows = len(component_names(model.num_layers, self.components))
        details = {
            "n": len(examples),
            "label_kind": examples.label_kind,
            "surrogate_family": model.family,
            "contrast": self.contrast,
            "null_task": True,
            "seconds": round(time.perf_counter() - started, 3),
        }
        return MethodResult(np.zeros((rows, model.hidden_size), dtype=np.float32), details, [NULL_TASK_WARNING])

    def _fisher(self, model: Any, tokenized: Any, targets: Any, settings: Any, progress: Any) -> tuple[dict, Any]:
        """Step 1 (train a copy of the surrogate and a head) and step 2 (the Fisher pass) on these targets."""
        from fute_kit_taskemb.fisher import fisher_pass
        from fute_kit_taskemb.group import trained_copy

        trained, train_details = trained_copy(model, tokenized, targets, settings, progress)  # embed_group's, or new
        fisher = fisher_pass(
            model,
            trained,
            tokenized,
            targets,
            components=self.components,
            labels=self.labels,
            reduction=self.reduction,
            batch_size=self.fisher_batch_size,
            precision=settings.precision,
            seed=self.seed,
            progress=progress,
        )
        return train_details, fisher  # the fine-tuned copy is dropped here, before the next job

    def _contrast(
        self, model: Any, tokenized: Any, targets: Any, settings: Any, progress: Any, task: np.ndarray, context: Any
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The task's row-normalised Fisher minus that of the prior-labelled null task on the same texts.

        The null Fisher depends on the texts and the prior, not on the labels: subjects with the same null task
        (the MTEs of a study on U, a shuffled-labels control and its dataset) train it once and share it from
        the cache (``fute_kit_hf.null_task``); ``null_task_reused`` in the details says which happened.
        """
        from fute_kit_hf.null_task import null_task_key, shared_null
        from fute_kit_hf.targets import prior_targets

        started = time.perf_counter()
        null = prior_targets(targets, uniform=self.contrast == "uniform")
        null_settings = self.null_task_settings(settings)
        key = null_task_key(self, model, tokenized, null, null_settings)
        null_fisher, shared = shared_null(
            context,
            self.name,
            key,
            lambda: self._fisher(model, tokenized, null, null_settings, progress)[1].array,
            task.shape,
        )
        array = _unit_rows(task) - _unit_rows(null_fisher)
        seconds = round(time.perf_counter() - started, 3)
        return array, {"contrast": self.contrast, "contrast_seconds": seconds, **shared}


def _unit_rows(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.divide(array, norms, out=np.zeros_like(array), where=norms > 0)
