"""The main job's plan is valid, and a miniature of it runs end to end (real models, tiny sizes)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fute_kit.config import parse_config
from fute_kit_demo.demo import DATASETS, SIZES, DemoPlan, run_demo, study_config
from fute_kit_demo.prompts import PROMPTS, genre_of
from fute_kit_demo.summary import summarise

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_demo_study_validates_with_the_installed_plugins(tmp_path: Path) -> None:
    plan = DemoPlan(tmp_path)
    kinds = ("classifier", "shuffled", "random-head")
    classifiers = {f"{kind}-{d}": str(tmp_path / kind / d) for kind in kinds for d in DATASETS}
    priors = {d: {"a": 0.5, "b": 0.5} for d in DATASETS}
    config = parse_config(study_config(plan, classifiers, priors))
    names = [m.name for m in config.models]
    assert len([n for n in names if n.startswith("smollm2/")]) == 6  # two prompts per genre
    assert {n.rsplit("-", 1)[0] for n in names if "/" not in n} >= {"classifier-rt", "shuffled-rt", "random-head-rt"}
    assert {genre_of(n.split("/")[1]) for n in names if "/" in n} == set(PROMPTS)
    assert config.unlabeled is not None and config.unlabeled.options["dataset"] == "unlabeled"


def test_openai_variant_uses_the_server(tmp_path: Path) -> None:
    pytest.importorskip("fute_kit_openai")
    plan = DemoPlan(tmp_path, server_url="http://127.0.0.1:9/v1")
    classifiers = {f"classifier-{d}": "x" for d in DATASETS}
    config = parse_config(study_config(plan, classifiers, {d: {"a": 1.0} for d in DATASETS}))
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
    assert len(study["jobs"]) == 4 + 4 * 3 + 4 + 6  # datasets; classifiers and two controls each; priors; prompts
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
    summary = (plan.out_dir / "demo-summary.md").read_text()
    for kind in ("classifiers", "shuffled-labels controls", "random-head controls", "prompts", "prompt choice"):
        assert f"- {kind}: " in summary, summary


def test_summary_counts_each_kind_and_compares_prompt_choice_with_accuracy() -> None:
    import numpy as np

    from fute_kit.similarity import SimilarityMatrix

    labels = [
        "dataset:rt-sentiment",
        "dataset:bbc-topic",
        "model:classifier-rt-sentiment",
        "model:random-head-rt-sentiment",
        "model:prior-rt-sentiment",
        "model:smollm2/topic-about",
        "model:smollm2/topic-section",
    ]
    sims = np.array(
        [
            # rt-sentiment, bbc-topic, classifier, random head, prior, topic-about, topic-section
            [1.0, 0.1, 0.9, 0.05, 0.0, 0.1, 0.2],
            [0.1, 1.0, 0.2, 0.3, 0.0, 0.4, 0.3],
            [0.9, 0.2, 1.0, 0.0, 0.0, 0.0, 0.0],
            [0.05, 0.3, 0.0, 1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.1, 0.4, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.2, 0.3, 0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    accuracies = {"smollm2/topic-about": 0.4, "smollm2/topic-section": 0.6}
    text = summarise(SimilarityMatrix(labels, sims), accuracies)
    assert "- classifiers: 1/1 nearest their own dataset, mean margin +0.700" in text
    assert "- random-head controls: 0/1 nearest their own dataset, mean margin -0.250" in text
    assert "- prior-only controls: 0/1 (zero embeddings" in text
    assert "- prompts: 2/2 nearest their own dataset" in text
    # topic-about is nearer bbc-topic (0.4) but topic-section is the more accurate prompt (0.6)
    assert "- prompt choice: the embedding picks the most accurate prompt for 0/1 genres" in text
    assert "| smollm2/topic-section | bbc-topic | 0.300 | yes | +0.100 | 0.60 |" in text
    assert "| prior-rt-sentiment | (none: a tie) | 0.000 | no (rt-sentiment) | +0.000 |  |" in text


def test_random_head_controls_differ_by_seed_and_are_saved_once(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForSequenceClassification

    from fute_kit_demo.controls import random_head_model

    names = ("negative", "positive")
    first = random_head_model(names, tmp_path / "a", 0, tmp_path / "cache")
    second = random_head_model(names, tmp_path / "b", 1, tmp_path / "cache")
    shown = capfd.readouterr()
    assert "MISSING" not in shown.out + shown.err  # the untrained head is the point, not a warning for the user
    stamp = (Path(first) / "config.json").stat().st_mtime_ns
    assert random_head_model(names, tmp_path / "a", 0, tmp_path / "cache") == first  # from the folder
    assert (Path(first) / "config.json").stat().st_mtime_ns == stamp
    heads = [AutoModelForSequenceClassification.from_pretrained(f).classifier.weight for f in (first, second)]
    assert heads[0].shape == (2, 384) and not bool((heads[0] == heads[1]).all())


def test_headline_size_is_the_results_retrieval_size() -> None:
    assert SIZES["headline"]["unlabeled_limit"] == 400 and SIZES["headline"]["dataset_limit"] == 400
    assert SIZES["quick"] == {k: getattr(DemoPlan("x"), k) for k in SIZES["quick"]}
