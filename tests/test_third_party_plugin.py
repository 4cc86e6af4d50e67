"""The plugin-author guide's example is real: pip installs it, entry points find it, it runs."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from toy_plugins import LABELS, TEXTS, ToyPlugin

import fute_kit
from fute_kit.config import parse_config
from fute_kit.pipeline import run_study
from fute_kit.plugins import PluginHost
from fute_kit.registry import Registry, set_registry

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "fute-kit-sklearn-example"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(EXAMPLE),
        ],
        check=True,
    )
    return target


@pytest.fixture
def registry_with_example(installed_example: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.syspath_prepend(str(installed_example))  # entry points are read from sys.path
    host = PluginHost.discover()
    host.register(ToyPlugin(), "toy")
    registry = Registry(host)
    previous = set_registry(registry)
    yield registry
    set_registry(previous)


def _fitted_classifier() -> object:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    assert sklearn
    return make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS, LABELS)


def test_example_is_discovered_through_entry_points(registry_with_example: Registry) -> None:
    spec = registry_with_example.get("model_source", "sklearn")
    assert spec.plugin == "sklearn-example"
    assert registry_with_example.host.infos["sklearn-example"].distribution == "fute-kit-sklearn-example"


def test_example_runs_in_a_study(registry_with_example: Registry, study_config: dict, tmp_path: Path) -> None:
    model_file = tmp_path / "clf.pkl"
    model_file.write_bytes(pickle.dumps(_fitted_classifier()))
    study_config["models"] = [{"name": "tfidf-lr", "source": "sklearn", "path": str(model_file)}]
    result = run_study(parse_config(study_config, registry_with_example), tmp_path / "out", show_progress=False)
    assert [o.status for o in result.outcomes] == ["computed"] * 3
    assert "model:tfidf-lr" in result.similarity.labels


def test_example_adapts_a_loaded_classifier(registry_with_example: Registry) -> None:
    space = fute_kit.make_space("none", "label-stats", buckets=2)
    unlabeled = fute_kit.Examples(texts=[*TEXTS, "good good", "so bad"])
    emb = fute_kit.embed_model(_fitted_classifier(), unlabeled, space, "tfidf-lr")
    assert emb.kind == "model" and emb.array.shape == (2, 2)
    assert np.allclose(emb.array.sum(axis=1)[emb.array.sum(axis=1) > 0], 1.0)


def test_missing_model_file_is_named(registry_with_example: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["models"] = [{"name": "ghost", "source": "sklearn", "path": str(tmp_path / "nope.pkl")}]
    result = run_study(parse_config(study_config, registry_with_example), tmp_path / "out", show_progress=False)
    assert "nope.pkl does not exist" in result.failures[0].error
