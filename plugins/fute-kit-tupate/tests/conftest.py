"""Fixtures of the tupate tests: the tiny random model folders of fute-kit-hf's test suite, reused.

pytest only shares a conftest's fixtures with its own folder, so the hf suite's conftest is loaded by path
and the fixtures these tests need are re-exported (same models, same tokenizers, built once per session).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_HF_CONFTEST = Path(__file__).resolve().parents[2] / "fute-kit-hf" / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("fute_kit_hf_test_fixtures", _HF_CONFTEST)
assert _spec is not None and _spec.loader is not None, f"{_HF_CONFTEST} is missing"
_hf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_hf)

hf_cache_dir = _hf.hf_cache_dir
hf_context = _hf.hf_context
minilm_dir = _hf.minilm_dir
smollm2_tokenizer_dir = _hf.smollm2_tokenizer_dir
tiny_model_dir = _hf.tiny_model_dir
