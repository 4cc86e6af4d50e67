"""Studies from configuration: validation, outputs, reruns, failures."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from fute_kit.config import parse_config
from fute_kit.errors import ConfigError, DataError
from fute_kit.pipeline import run_study
from fute_kit.registry import Registry


def test_study_writes_matrix_rankings_and_store(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    config = parse_config(study_config, toy_registry)
    result = run_study(config, tmp_path, registry=toy_registry, show_progress=False)
    assert [o.status for o in result.outcomes] == ["computed"] * 4
    with open(tmp_path / "similarity.csv") as handle:
        rows = list(csv.reader(handle))
    labels = ["dataset:reviews", "dataset:flipped", "model:good-detector", "model:prior"]
    assert rows[0] == ["", *labels] and [r[0] for r in rows[1:]] == labels
    assert float(rows[1][1]) == pytest.approx(1.0)
    rankings = json.loads((tmp_path / "rankings.json").read_text())
    datasets_by_similarity = [r["name"] for r in rankings["model:good-detector"] if r["name"].startswith("dataset:")]
    assert datasets_by_similarity == ["dataset:reviews", "dataset:flipped"]  # it behaves like its own task
    assert (tmp_path / "run.log").read_text().count("computed") == 4
    assert len(list((tmp_path / "predictions").glob("*.safetensors"))) == 2


def test_rerun_recomputes_nothing(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    config = parse_config(study_config, toy_registry)
    run_study(config, tmp_path, registry=toy_registry, show_progress=False)
    again = run_study(config, tmp_path, registry=toy_registry, show_progress=False)
    assert [o.status for o in again.outcomes] == ["reused"] * 4


def test_changed_data_gives_a_new_embedding(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    study_config["datasets"][0]["labels"] = study_config["datasets"][0]["labels"][::-1]
    again = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    assert [o.status for o in again.outcomes] == ["computed", "reused", "reused", "reused"]


def test_failing_model_does_not_stop_the_others(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["models"].insert(0, {"name": "crashy", "source": "keyword", "keyword": "x", "fail": True})
    result = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses == {
        "reviews": "computed",
        "flipped": "computed",
        "crashy": "failed",
        "good-detector": "computed",
        "prior": "computed",
    }
    assert "model crashed on purpose" in result.failures[0].error
    assert "model:crashy" not in result.similarity.labels
    assert "crashy failed" in (tmp_path / "run.log").read_text()


def test_all_config_problems_are_reported_at_once(toy_registry: Registry, study_config: dict) -> None:
    study_config["space"]["options"] = {"bucketz": 2}
    study_config["datasets"][0]["source"] = "inlin"
    study_config["datasets"][1]["texts"] = "not a list"
    study_config["models"][0].pop("keyword")
    study_config["models"].append({"source": "keyword", "keyword": "a"})
    study_config["similarity"] = {"metric": "cosinus"}
    with pytest.raises(ConfigError) as info:
        parse_config(study_config, toy_registry, "study.toml")
    text = "\n".join(info.value.problems)
    assert "[space] options: key 'bucketz': unknown key (did you mean buckets?)" in text
    assert "[[datasets]] entry 1 ('reviews'): unknown dataset source 'inlin'; did you mean 'inline'?" in text
    assert "[[datasets]] entry 2 ('flipped'): key 'texts': expected list[str]" in text
    assert "[[models]] entry 1 ('good-detector'): key 'keyword': missing required key" in text
    assert "[[models]] entry 3: key 'name': missing" in text
    assert "[similarity]" in text and "cosinus" in text
    assert len(info.value.problems) == 6


def test_models_need_unlabeled_text(toy_registry: Registry, study_config: dict) -> None:
    del study_config["unlabeled"]
    with pytest.raises(ConfigError, match=r"\[unlabeled\]: missing section"):
        parse_config(study_config, toy_registry)


def test_prompts_table_expands_to_one_model_per_prompt(toy_registry: Registry, study_config: dict) -> None:
    study_config["models"] = [
        {"name": "kw", "source": "keyword", "prompts": {"a": {"keyword": "good"}, "b": {"keyword": "bad"}}}
    ]
    config = parse_config(study_config, toy_registry)
    assert [(m.name, m.options["keyword"]) for m in config.models] == [("kw/a", "good"), ("kw/b", "bad")]


def test_limit_samples_unlabeled_text(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["unlabeled"]["limit"] = 5
    config = parse_config(study_config, toy_registry)
    assert config.unlabeled is not None and config.unlabeled.limit == 5
    run_study(config, tmp_path, registry=toy_registry, show_progress=False)
    sidecars = [json.loads(p.read_text()) for p in tmp_path.glob("embeddings/*/model/*.json")]
    assert {s["provenance"]["n_examples"] for s in sidecars} == {5}


def test_method_default_metric_is_used(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    result = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    assert result.similarity is not None and result.similarity.metric == "dot"


def test_declared_metric_follows_the_space_options(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["space"]["options"]["compare_by"] = "toy-cosine"
    result = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    assert result.similarity is not None and result.similarity.metric == "toy-cosine"


def test_space_options_are_completed_with_defaults(toy_registry: Registry, study_config: dict) -> None:
    config = parse_config(study_config, toy_registry)
    assert config.space.options == {"buckets": 3, "seed": 0, "compare_by": "dot"}


def test_provenance_is_recorded(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    sidecar: dict[str, Any] = json.loads(next(tmp_path.glob("embeddings/*/dataset/reviews--*.json")).read_text())
    prov = sidecar["provenance"]
    assert prov["n_examples"] == 8 and prov["source"]["source"] == "inline"
    assert prov["details"]["surrogate_seen"] == "none" and "fute-kit" in prov["versions"]
    assert prov["details"]["labels"]["classes"] == {"negative": 4, "positive": 4}


def test_a_model_with_one_answer_for_almost_all_of_u_is_flagged(
    toy_registry: Registry, study_config: dict, tmp_path: Path
) -> None:
    # "so good" is the only text of U with this keyword: 1 of 31 answers differs from the rest.
    study_config["unlabeled"]["texts"] += [f"neutral text {i}" for i in range(20)]
    study_config["models"] = [
        {"name": "rare", "source": "keyword", "keyword": "so good"},
        {"name": "prior", "source": "constant", "probabilities": {"negative": 0.5, "positive": 0.5}},
    ]
    result = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    warnings = {outcome.name: outcome.warnings for outcome in result.outcomes}
    assert any("answers 'negative' for 97% of the 31 texts of U" in w for w in warnings["rare"])
    assert not any("answers" in w for w in warnings["prior"])  # exactly constant: the method's own warning
    sidecar = json.loads(next(tmp_path.glob("embeddings/*/model/rare--*.json")).read_text())
    assert sidecar["provenance"]["details"]["labels"]["answers"] == {"negative": 30, "positive": 1}


def test_a_model_with_nearly_uniform_soft_labels_is_flagged(
    toy_registry: Registry, study_config: dict, tmp_path: Path
) -> None:
    study_config["models"] = [
        {"name": "unsure", "source": "keyword", "keyword": "good", "sureness": 0.1},
        {"name": "sure", "source": "keyword", "keyword": "good"},
        {"name": "prior", "source": "constant", "probabilities": {"negative": 0.5, "positive": 0.5}},
    ]
    result = run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    warnings = {outcome.name: outcome.warnings for outcome in result.outcomes}
    assert any("nearly uniform (mean top probability 0.55" in w for w in warnings["unsure"])
    assert not any("nearly uniform" in w for w in warnings["sure"] + warnings["prior"])
    sidecar = json.loads(next(tmp_path.glob("embeddings/*/model/unsure--*.json")).read_text())
    confidence = sidecar["provenance"]["details"]["labels"]["confidence"]
    assert confidence["mean_top_probability"] == 0.55 and confidence["normalised_entropy"] > 0.99


@pytest.mark.parametrize("how", ["study", "api"])
def test_a_model_that_drops_predictions_fails_the_same_way_in_a_study_and_the_api(
    toy_registry: Registry, study_config: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from toy_plugins import KeywordModel

    import fute_kit
    from fute_kit.examples import Examples

    answer = KeywordModel.predict

    def one_short(self: KeywordModel, inputs: Examples, context: Any) -> Examples:  # fault injection
        full = answer(self, inputs, context)
        return full.select(list(range(len(full) - 1)))

    monkeypatch.setattr(KeywordModel, "predict", one_short)
    if how == "study":
        result = run_study(
            parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False
        )
        assert [f.name for f in result.failures] == ["good-detector"]
        assert "returned 10 soft labels for 11 inputs" in result.failures[0].error
    else:
        space = fute_kit.make_space("none", "label-stats", registry=toy_registry)
        with pytest.raises(DataError, match="returned 3 soft labels for 4 inputs"):
            fute_kit.embed_model(
                KeywordModel("good"), Examples(texts=["a", "good", "b", "c"]), space, registry=toy_registry
            )


def test_study_folder_names_every_file_the_run_writes(
    toy_registry: Registry, study_config: dict, tmp_path: Path
) -> None:
    from fute_kit.study_folder import StudyFolder

    run_study(parse_config(study_config, toy_registry), tmp_path, registry=toy_registry, show_progress=False)
    folder = StudyFolder(tmp_path)
    named = [folder.embeddings, folder.predictions, folder.similarity_csv, folder.rankings_json, folder.study_json]
    assert all(path.exists() for path in [*named, folder.run_log])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in [*named, folder.run_log])
    assert folder.summary()["space"]["method"] == "label-stats"
    # A reader given the embeddings folder itself finds the same store.
    assert len(StudyFolder(folder.embeddings).readable_store().entries()) == len(folder.store().entries()) == 4
    assert not folder.evaluation_json.exists() and StudyFolder(tmp_path / "nowhere").summary() == {}
