"""experiments/prompts_on_target.py and demo_dte_size.py: the studies they build, and what they refuse."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from fute_kit.config import parse_config
from fute_kit.registry import get_registry

CONFIG = Path(__file__).parents[1] / "docs" / "examples" / "prompt-pools-qwen.toml"


@pytest.fixture(scope="module")
def on_target(load_experiment: Callable[[str], ModuleType]) -> ModuleType:
    return load_experiment("prompts_on_target")


def test_a_target_study_narrows_the_pool_study_to_one_dataset(on_target: ModuleType, tmp_path: Path) -> None:
    args = on_target.parse_args(["--config", str(CONFIG), "--out", str(tmp_path), "--datasets", "bbc-topic"])
    classifier = tmp_path / "bbc-topic-n400-e3"
    data = on_target.target_study(args, seed=2, dataset="bbc-topic", classifiers={"bbc-topic": classifier})
    assert data["unlabeled"] == {
        "name": "bbc-topic-test-inputs", "source": "builtin", "dataset": "bbc-topic", "split": "test", "limit": 100
    }  # fmt: skip
    assert [d["name"] for d in data["datasets"]] == ["bbc-topic"]
    assert [m["name"] for m in data["models"]] == ["qwen-topic", "clf-bbc-topic"]
    assert data["space"]["options"]["seed"] == 2 and data["space"]["options"]["max_length"] == 64
    data["models"] = data["models"][:1]  # the classifier folder is not real here
    config = parse_config(data, get_registry(), "target study")
    assert {m.name.split("/")[0] for m in config.models} == {"qwen-topic"} and len(config.models) == 11


def test_a_dataset_without_prompts_of_its_genre_is_named(on_target: ModuleType, tmp_path: Path) -> None:
    args = on_target.parse_args(["--config", str(CONFIG), "--out", str(tmp_path), "--datasets", "convention-party"])
    with pytest.raises(SystemExit, match="no LLM entry of convention-party's genre"):
        on_target.target_study(args, seed=0, dataset="convention-party", classifiers={})


def test_demo_dte_size_names_a_folder_that_is_not_a_finished_demo(
    load_experiment: Callable[[str], ModuleType], tmp_path: Path
) -> None:
    module = load_experiment("demo_dte_size")
    (tmp_path / "embeddings").mkdir()  # a store, but no prompt-accuracy.csv
    with pytest.raises(SystemExit, match=r"not a finished demo folder .*prompt-accuracy\.csv"):
        module.main(["--demo", str(tmp_path), "--out", str(tmp_path / "out")])
