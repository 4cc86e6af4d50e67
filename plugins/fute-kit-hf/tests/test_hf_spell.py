"""SPELL through hf-prompted: the mean token log-likelihood of filled prompts, batched and padded per batch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fute_kit.examples import Examples
from fute_kit_hf.prompted import HFPrompted, load_lm

TEXTS = ["I loved this film.", "Terrible, boring, far too long and badly acted.", "Fine."]


def one_at_a_time(model: Any, tokenizer: Any, text: str) -> float:
    """The reference: one unpadded forward pass, log-softmax of every next token."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, :-1].float()
    return float(torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None]).mean())


def test_smollm2_prompt_log_likelihood(smollm2_dir: str, hf_context: Any) -> None:
    source = HFPrompted(
        prompt="Review: {text}\nIs this review positive or negative?",
        labels={"positive": ["positive"], "negative": ["negative"]},
        path=smollm2_dir,
        batch_size=2,  # two batches: the longest two texts together (padded), then the third alone
    )
    scores = source.prompt_log_likelihood(Examples(texts=TEXTS), hf_context)
    model, tokenizer = load_lm(smollm2_dir, cache_dir=hf_context.cache_dir)
    plain = [source.render(tokenizer, t, None, use_chat=False) for t in TEXTS]
    assert plain[0] == "Review: I loved this film.\nIs this review positive or negative?"
    assert scores == pytest.approx([one_at_a_time(model, tokenizer, p) for p in plain], abs=2e-4)
    # Word salad around the same texts is a far less likely prompt.
    salad = HFPrompted(prompt="negative review Is: or {text} positive this\n?", labels=source.labels, path=smollm2_dir)
    assert np.all(salad.prompt_log_likelihood(Examples(texts=TEXTS), hf_context) < scores - 0.5)
