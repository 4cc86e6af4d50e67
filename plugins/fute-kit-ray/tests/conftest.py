"""Fixtures of the ray tests: the hf plugin's tiny-model fixtures (its conftest is loaded by path and re-exported)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_HF_CONFTEST = Path(__file__).resolve().parents[2] / "fute-kit-hf" / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("fute_kit_hf_test_fixtures", _HF_CONFTEST)
assert _spec is not None and _spec.loader is not None, f"{_HF_CONFTEST} is missing"
_hf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hf)

minilm_dir = _hf.minilm_dir
smollm2_tokenizer_dir = _hf.smollm2_tokenizer_dir
tiny_model_dir = _hf.tiny_model_dir
hf_cache_dir = _hf.hf_cache_dir
