"""The same model, prompt and inputs give the same soft labels through llama.cpp (openai) and transformers
(hf-prompted), up to quantisation: Q4_1 weights on the server, dequantised float32 weights in transformers.

Measured on 40 texts of the builtin U (bench/openai_throughput.py --agreement 40, see bench/RESULTS-openai.md):
argmax agreement 0.90-0.975 and mean absolute difference 0.025-0.061 per class probability over three
prompts. The tolerances below leave room for the eight short texts used here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fute_kit.components import RunContext, default_cache_dir
from fute_kit.examples import Examples
from fute_kit_openai.source import OpenAIModel

pytestmark = pytest.mark.server

MAX_MEAN_ABS_DIFF = 0.06
MIN_ARGMAX_AGREEMENT = 0.85


def test_soft_labels_agree_with_hf_prompted(llama_server: Any, sentiment: dict[str, Any], cache_dir: Path) -> None:
    prompted = pytest.importorskip("fute_kit_hf.prompted", reason="the hf plugin's hf-prompted source is not installed")
    inputs = Examples(texts=sentiment["positive"] + sentiment["negative"])
    system = "You are a film critic."
    hf = prompted.HFPrompted(prompt=sentiment["prompt"], labels=sentiment["labels"], path="smollm2", system=system)
    # The dequantised copy of SmolLM2 is made once and kept in the shared fute_kit cache.
    reference = np.asarray(hf.predict(inputs, RunContext(cache_dir=default_cache_dir(), show_progress=False)).labels)
    served = OpenAIModel(
        model=llama_server.model,
        base_url=llama_server.base_url,
        prompt=sentiment["prompt"],
        labels=sentiment["labels"],
        system=system,
        cache_path=str(cache_dir / "r.sqlite"),
    )
    context = RunContext(cache_dir=cache_dir, show_progress=False)
    labels = np.asarray(served.predict(inputs, context).labels)
    assert context.details["openai"]["unmatched"] == 0
    difference = np.abs(labels - reference).mean()
    agreement = (labels.argmax(axis=1) == reference.argmax(axis=1)).mean()
    assert difference <= MAX_MEAN_ABS_DIFF, (difference, labels.round(3), reference.round(3))
    assert agreement >= MIN_ARGMAX_AGREEMENT
