"""The main job's plan is valid, and a miniature of it runs end to end (real models, tiny sizes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fute_kit.config import parse_config
from fute_kit_demo.demo import DATASETS, DemoPlan, run_demo, study_config, summarise
from fute_kit_demo.prompts import PROMPTS, genre_of

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_demo_study_validates_with_the_installed_plugins(tmp_path: Path) -> None:
    plan = DemoPlan(tmp_path)
    classifiers = {d: str(tmp_path / d) for d in DATASETS}
    priors = {d: {"a": 0.5, "b": 0.5} for d in DATASETS}
    config = parse_config(study_config(plan, classifiers, priors))
    names = [m.name for m in config.models]
    assert len([n for n in names if n.startswith("smollm2/")]) == 6  # two prompts per genre
    assert {genre_of(n.split("/")[1]) for n in names if "/" in n} == set(PROMPTS)
    assert config.unlabeled is not None and config.unlabeled.options["dataset"] == "unlabeled"


def test_openai_variant_uses_the_server(tmp_path: Path) -> None:
    pytest.importorskip("fute_kit_openai")
    plan = DemoPlan(tmp_path, server_url="http://127.0.0.1:9/v1")
    config = parse_config(study_config(plan, {d: "x" for d in DATASETS}, {d: {"a": 1.0} for d in DATASETS}))
    llm = [m for m in config.models if m.name.startswith("smollm2/")]
    assert {m.source for m in llm} == {"openai"} and llm[0].options["base_url"] == "http://127.0.0.1:9/v1"


@pytest.mark.slow
def test_miniature_demo_runs_and_reruns_from_the_store(tmp_path: Path) -> None:
    plan = DemoPlan(
        tmp_path / "out",
        dataset_limit=16,
        unlabeled_limit=12,
        test_limit=6,
        classifier_limit=24,
        classifier_epochs=1,
        method="textemb",
        method_options={},
        cache_dir=tmp_path / "cache",
    )
    lines: list[str] = []
    report = run_demo(plan, echo=lines.append, show_progress=False)
    assert report.exists() and "data:image/png;base64" in report.read_text()
    study = json.loads((plan.out_dir / "study.json").read_text())
    assert {j["status"] for j in study["jobs"]} == {"computed"}
    assert len(study["jobs"]) == 4 + 4 + 4 + 6
    evaluation = json.loads((plan.out_dir / "evaluation.json").read_text())
    assert evaluation  # prompts ranked against their measured accuracy
    assert (plan.out_dir / "prompt-accuracy.csv").read_text().count("smollm2/") == 6
    accuracies = json.loads((plan.out_dir / "prompt-accuracy.json").read_text())["accuracies"]
    assert len(accuracies) == 6 and all(0 <= row["accuracy"] <= 1 for row in accuracies)
    lines.clear()
    run_demo(plan, echo=lines.append, show_progress=False)
    again = json.loads((plan.out_dir / "study.json").read_text())
    assert {j["status"] for j in again["jobs"]} == {"reused"}
    assert any("cached" in line for line in lines)


def test_summary_marks_own_genre() -> None:
    import numpy as np

    from fute_kit.similarity import SimilarityMatrix

    labels = ["dataset:rt-sentiment", "dataset:bbc-topic", "model:classifier-rt-sentiment", "model:smollm2/topic-about"]
    values = np.array([[1, 0, 0.9, 0.1], [0, 1, 0.2, 0.3], [0.9, 0.2, 1, 0], [0.1, 0.3, 0, 1]], dtype=float)
    text = summarise(SimilarityMatrix(labels, values))
    assert "| classifier-rt-sentiment | rt-sentiment | 0.900 | yes |" in text
    assert "| smollm2/topic-about | bbc-topic | 0.300 | yes |" in text


def test_summary_a_zero_embedding_is_nobodys_neighbour() -> None:
    import numpy as np

    from fute_kit.similarity import SimilarityMatrix

    labels = ["dataset:rt-sentiment", "dataset:bbc-topic", "model:prior-rt-sentiment"]
    values = np.array([[1, 0.1, 0], [0.1, 1, 0], [0, 0, 0]], dtype=float)
    text = summarise(SimilarityMatrix(labels, values))
    assert "| prior-rt-sentiment | (none: a tie) | 0.000 | no (rt-sentiment) |" in text
