"""The ``textemb`` method: the mean sentence embedding of a dataset's texts (labels are ignored).

The cheap label-free baseline every task-embedding claim must beat: if datasets are told apart by
what their texts look like, a method that uses labels has to do better than this to show it encodes
the task, not the topic.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import attrs
import numpy as np

from fute_kit.plugin import DataError, Examples, MethodResult, RunContext, option
from fute_kit_hf.surrogate_check import surrogate_problem


@attrs.frozen
class TextEmb:
    """Mean over texts of the mean-pooled last layer of the surrogate (real tokens only), no labels."""

    name: ClassVar[str] = "textemb"
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("cosine", {})
    check_surrogate = staticmethod(surrogate_problem)  # an unknown alias or folder: exit 2 before any job

    batch_size: int = option(
        64, help="texts per forward pass (batches are sorted by length)", validator=attrs.validators.gt(0)
    )
    max_length: int = option(
        128, help="tokens per text; longer texts are truncated and counted", validator=attrs.validators.gt(0)
    )
    device: str = option("auto", help="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda' or 'cuda:N'")

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        import torch

        from fute_kit_hf.surrogate import load_surrogate

        if not len(examples):
            raise DataError(f"textemb: examples {examples.name!r} are empty: nothing to embed")
        model = load_surrogate(surrogate, self.device)
        started = time.perf_counter()
        tokenized = model.tokenize(examples, self.max_length)
        total = torch.zeros(model.hidden_size, dtype=torch.float64, device=model.device)
        real_tokens = processed = 0
        batches = model.batches(tokenized, self.batch_size, order="length")
        steps = -(-len(examples) // self.batch_size)
        with torch.inference_mode():
            for batch in context.progress(batches, total=steps, desc="textemb"):
                features = model.forward_features(model.backbone, batch, output_hidden_states=False)
                weights = features.mask.to(features.last.dtype).unsqueeze(-1)
                sentence = (features.last * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
                total += sentence.sum(dim=0).double()
                real_tokens += batch.real_tokens
                processed += batch.processed_tokens
        array = (total / len(examples)).float().cpu().numpy().astype(np.float32)
        details = {
            "n": len(examples),
            "truncated": tokenized.truncated,
            "max_length": tokenized.max_length,
            "padding_efficiency": round(real_tokens / max(1, processed), 4),
            "surrogate_family": model.family,
            "seconds": round(time.perf_counter() - started, 3),
        }
        warnings = []
        if tokenized.truncated:
            warnings.append(
                f"{tokenized.truncated} of {len(examples)} texts were longer than {tokenized.max_length} "
                "tokens and were truncated (raise max_length to keep them whole)"
            )
        return MethodResult(array, details, warnings)
