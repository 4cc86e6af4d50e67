"""The ``tupate`` method: the parameters tuned on a task, with the surrogate frozen, are its embedding.

TuPaTE (Zhou et al., EMNLP 2022) as FUTE uses it. The space fixes the surrogate, the variant, the
options and the seed; the seed fixes the initial tuned parameters, the initial head (with the number
of classes), the data order and dropout, so two embeddings of one space start from the same point
and differ by what the task taught them. How the default contrast and metric follow from that: the
plugin's README ("What is embedded and compared").
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, MethodResult, RunContext, option
from fute_kit_hf.surrogate_check import surrogate_problem
from fute_kit_hf.targets import NULL_TASK_WARNING, is_null_task, learning_warnings, majority_rate
from fute_kit_hf.training import NON_NEGATIVE, POSITIVE, TrainingOptions, training_option

Variant = Literal["prompt", "prefix", "lora", "bitfit"]
VARIANTS: tuple[str, ...] = ("prompt", "prefix", "lora", "bitfit")

# CPU defaults of the learning rate per variant (the reference's 1e-2 is for prompts and prefixes; LoRA and
# BitFit change weights the whole input flows through, and take a smaller rate).
DEFAULT_LEARNING_RATES = {"prompt": 1e-2, "prefix": 1e-2, "lora": 1e-3, "bitfit": 1e-3}


@attrs.frozen
class TuPaTE(TrainingOptions):
    """Tuned parameters as the task embedding: soft prompt (default), prefix, LoRA or BitFit.

    The training options not declared here (max_length, weight_decay, max_grad_norm, soft_loss, head_init)
    and their defaults are ``fute_kit_hf.training.TrainingOptions``'.
    """

    name: ClassVar[str] = "tupate"
    # With the default contrast the shared start cancels (task minus null task), and the mean over positions does
    # not depend on which start vector the seed drew for each position. Raw tuned parameters (contrast "none")
    # share their start, so raw cosine saturates near 1: metric_for centres them (README, "What is embedded").
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("cosine", {"pool": "mean"})
    check_surrogate = staticmethod(surrogate_problem)  # an unknown alias or folder: exit 2 before any job
    size_dependent: ClassVar[bool] = True  # epochs x examples training steps: DTEs and MTEs of like sizes compare

    variant: Variant = option(
        "prompt",
        help="what is tuned: 'prompt' (soft prompt), 'prefix' (key/value prefixes, P-tuning v2), 'lora', 'bitfit'",
    )
    output: Literal["matrix", "mean"] = option(
        "matrix",
        help="prompt/prefix: the L x d matrix (default; cka compares it position by position) or its mean over "
        "positions; lora/bitfit embeddings are always flat vectors",
    )
    length: int = option(
        16, help="L: soft-prompt vectors (prompt) or key/value positions per layer (prefix)", validator=POSITIVE
    )
    init: Literal["vocab", "random"] = option(
        "vocab",
        help="prompt/prefix start: 'vocab' (embeddings, or keys/values, of L random vocabulary tokens) or "
        "'random' (normal, at the scale of those)",
    )
    rank: int = option(4, help="LoRA rank r", validator=POSITIVE)
    lora_alpha: float = option(
        8.0, help="LoRA scaling alpha (the update is scaled by alpha / r)", validator=NON_NEGATIVE
    )
    learning_rate: float | None = option(
        None,
        help="AdamW learning rate of the tuned parameters; default per variant: prompt/prefix 1e-2, lora/bitfit 1e-3",
        validator=attrs.validators.optional(NON_NEGATIVE),
    )
    head_learning_rate: float = option(
        1e-2,
        help="AdamW learning rate of the linear head",
        validator=NON_NEGATIVE,
    )
    epochs: int = training_option("epochs", 5)
    batch_size: int = training_option("batch_size", 32)
    warmup_fraction: float = training_option("warmup_fraction", 0.05)
    early_stopping_fraction: float = training_option("early_stopping_fraction", 0.1)
    patience: int = training_option("patience", 3)
    contrast: Literal["none", "prior"] = option(
        "prior",
        help="'prior': subtract the parameters tuned from the same start on the null task (the same texts labelled "
        "with the labels' prior; a second tuning run); 'none': the raw tuned parameters",
    )
    dropout: bool = option(
        False,
        help="run the frozen surrogate with dropout while tuning, as the reference code (off: the tuned parameters "
        "fit the deterministic model they are read from)",
    )
    seed: int = option(0, help="fixes the initial tuned parameters and head, the data order and dropout")
    device: str = option("auto", help="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda' or 'cuda:N'")

    @classmethod
    def metric_for(cls, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Cosine of the mean over positions for contrasts (the default); centred cosine for raw parameters."""
        contrast = options.get("contrast", attrs.fields_dict(cls)["contrast"].default)
        if contrast == "none":
            return "cosine", {"center": "collection"}
        return cls.default_metric[0], dict(cls.default_metric[1])

    def __attrs_post_init__(self) -> None:
        choices = {
            "variant": VARIANTS,
            "output": ("matrix", "mean"),
            "init": ("vocab", "random"),
            "contrast": ("none", "prior"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(allowed)}; got {getattr(self, key)!r}")
        if self.output == "mean" and self.variant in ("lora", "bitfit"):
            raise ValueError(
                f"output = 'mean' averages prompt or prefix positions; {self.variant} embeddings are flat vectors "
                "(remove output, or choose variant 'prompt' or 'prefix')"
            )

    @property
    def effective_learning_rate(self) -> float:
        return DEFAULT_LEARNING_RATES[self.variant] if self.learning_rate is None else float(self.learning_rate)

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        import torch

        from fute_kit_hf.surrogate import load_surrogate, make_head
        from fute_kit_hf.training import train
        from fute_kit_tupate.tuners import TunedWithHead

        started = time.perf_counter()
        _targets(examples, "cpu", self.soft_loss)  # bad labels fail before the model loads
        model = load_surrogate(surrogate, self.device)
        targets = _targets(examples, model.device, self.soft_loss)
        max_length = self._max_length(model)
        tokenized = model.tokenize(examples, max_length)
        tuned = self._setup(model)
        if self.contrast == "prior" and is_null_task(targets):
            # The labels are their prior (a constant model): this task is the null task, its contrast is zero.
            zero = np.zeros_like(tuned.embedding(self.output))
            details = {
                "n": len(examples),
                "label_kind": examples.label_kind,
                "variant": self.variant,
                "contrast": self.contrast,
                "null_task": True,
            }
            return MethodResult(zero, details, [NULL_TASK_WARNING])
        initial = tuned.snapshot()
        head = make_head(model.hidden_size, targets.num_outputs, self.seed, model.device)
        settings = self.training_settings(
            self.seed,
            learning_rate=self.effective_learning_rate,
            dropout=self.dropout,
            probe_size=256,
            final_pass=True,
            label="tupate",
        )
        progress = context.progress if context.show_progress else None
        train_details = train(
            model, TunedWithHead(tuned, head, self.head_learning_rate), tokenized, targets, settings, progress
        )
        array = tuned.embedding(self.output)
        null_details: dict[str, Any] = {}
        if self.contrast == "prior":
            null, null_details = self._null_embedding(model, tokenized, targets, settings, progress, context, array)
            array = array - null
        with torch.no_grad():
            moved = torch.sqrt(sum(((p.detach() - initial[n]) ** 2).sum() for n, p in tuned.params.items()))
            start = torch.sqrt(sum((v**2).sum() for v in initial.values()))
        majority = majority_rate(targets)
        details: dict[str, Any] = {
            "n": len(examples),
            "label_kind": examples.label_kind,
            "variant": self.variant,
            "surrogate_family": model.family,
            "tuned_parameters": tuned.size,
            "embedding_shape": list(array.shape),
            "learning_rate": settings.learning_rate,
            "truncated": tokenized.truncated,
            "max_length": tokenized.max_length,
            "relative_change": round(float(moved / start.clamp_min(1e-12)), 6),
            **tuned.details,
            **train_details,
            **null_details,
            "majority_rate": majority,
        }
        warnings = learning_warnings(details, majority, "tuned parameters")
        details["learned"] = not warnings
        if tokenized.truncated:
            warnings.append(
                f"{tokenized.truncated} of {len(examples)} inputs were longer than {tokenized.max_length} tokens "
                "and were truncated (raise max_length to keep them whole)"
            )
        details["seconds"] = round(time.perf_counter() - started, 3)
        del tuned, head  # free the model copy before the next job
        return MethodResult(array, details, warnings)

    def _setup(self, model: Any) -> Any:
        """The variant's tuned parameters on a frozen copy of the surrogate, from the space's start."""
        from fute_kit_tupate.tuners import setup_variant

        return setup_variant(
            model,
            self.variant,
            length=self.length,
            init=self.init,
            rank=self.rank,
            alpha=self.lora_alpha,
            seed=self.seed,
        )

    def _null_embedding(
        self, model: Any, tokenized: Any, targets: Any, settings: Any, progress: Any, context: Any, task: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Parameters tuned from the same start on the null task (the same texts labelled with their prior).

        They depend on the texts and the prior, not on the labels: subjects with the same null task share one
        tuning run from the cache (``fute_kit_hf.null_task``); ``null_task_reused`` in the details says which.
        """
        from fute_kit_hf.null_task import null_task_key, shared_null
        from fute_kit_hf.surrogate import make_head
        from fute_kit_hf.targets import prior_targets
        from fute_kit_hf.training import train
        from fute_kit_tupate.tuners import TunedWithHead

        null = prior_targets(targets)
        settings = self.null_task_settings(settings)

        def tune() -> np.ndarray:
            tuned = self._setup(model)
            head = make_head(model.hidden_size, null.num_outputs, self.seed, model.device)
            train(model, TunedWithHead(tuned, head, self.head_learning_rate), tokenized, null, settings, progress)
            return tuned.embedding(self.output)

        key = null_task_key(self, model, tokenized, null, settings)
        return shared_null(context, self.name, key, tune, task.shape)

    def _max_length(self, model: Any) -> int:
        """The text budget: a soft prompt takes ``length`` of the model's positions."""
        if self.variant != "prompt":
            return self.max_length
        room = model.max_positions - self.length
        if room < 8:
            raise DataError(
                f"tupate: a prompt of length {self.length} leaves {room} of surrogate {model.name!r}'s "
                f"{model.max_positions} positions for the text; lower length"
            )
        return min(self.max_length, room)


def _targets(examples: Examples, device: Any, soft_loss: str) -> Any:
    from fute_kit_hf.targets import make_targets

    return make_targets(examples, soft_loss, device, method="tupate")  # type: ignore[arg-type]
