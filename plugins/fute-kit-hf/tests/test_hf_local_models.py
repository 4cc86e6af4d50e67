"""hf-prompted loads the named local models of ``fute llm fetch`` by name (the GGUF file itself is opt-in: 1.1 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fute_kit.components import RunContext
from fute_kit.examples import Examples
from fute_kit_hf.assets import AssetError, local_gguf
from fute_kit_hf.prompted import HFPrompted


def test_named_local_model_resolves_to_its_fetched_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fute_kit.local_models import MODELS

    monkeypatch.setenv("FUTE_KIT_CACHE", str(tmp_path))
    assert local_gguf("smollm2") is None and local_gguf("some-org/some-model") is None
    with pytest.raises(AssetError, match=r"not fetched yet.*fute llm fetch qwen2\.5-coder-1\.5b-instruct"):
        local_gguf("qwen2.5-coder-1.5b-instruct")
    model = MODELS["qwen2.5-coder-1.5b-instruct"]
    fetched = tmp_path / "models" / model.file_name
    fetched.parent.mkdir(parents=True)
    with open(fetched, "wb") as handle:
        handle.truncate(model.size)
    assert local_gguf("qwen2.5-coder-1.5b-instruct") == fetched


def test_hf_prompted_with_an_unfetched_name_fails_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUTE_KIT_CACHE", str(tmp_path))
    source = HFPrompted(prompt="Review: {text}", labels={"pos": ["positive"], "neg": ["negative"]}, path="gemma-3-270m")
    with pytest.raises(AssetError, match=r"Gemma Terms of Use.*fute llm fetch gemma-3-270m"):
        source.predict(Examples(texts=["fine"]), RunContext(cache_dir=tmp_path, show_progress=False))
