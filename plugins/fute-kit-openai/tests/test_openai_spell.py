"""SPELL through the openai source: the local llama.cpp server gives no log-probabilities of prompt tokens, and
the source says so (NotImplementedError, which ``fute evaluate`` reports as SPELL unavailable) after one request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit_openai.source import OpenAIModel


def test_local_server_cannot_score_prompt_text(llama_server: Any, sentiment: dict[str, Any], tmp_path: Path) -> None:
    model = OpenAIModel(
        model=llama_server.model,
        base_url=llama_server.base_url,
        cache_path=str(tmp_path / "r.sqlite"),
        prompt=sentiment["prompt"],
        labels=sentiment["labels"],
    )
    inputs = Examples(texts=sentiment["positive"][:2])
    with pytest.raises(NotImplementedError, match=r"/v1/completions returned no log-probabilities of the prompt"):
        model.prompt_log_likelihood(inputs, RunContext(cache_dir=tmp_path, show_progress=False))
