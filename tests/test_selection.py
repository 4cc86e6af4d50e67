"""Ranking stored embeddings by similarity to a target: ordering, candidate sets, names, errors, ``fute rank``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

from fute_kit import EmbeddingStore, Provenance, Space, TaskEmbedding, hookimpl
from fute_kit.config import parse_config
from fute_kit.errors import DataError
from fute_kit.pipeline import run_study
from fute_kit.prompts import CANDIDATE_SETS, in_candidate_set
from fute_kit.selection import (
    UnknownSubjectError,
    open_study,
    rank_candidates,
    rank_study,
    resolve_label,
)
from fute_kit.selection_cli import evaluate, measure, rank

SPACE = Space("none", "label-stats", {"buckets": 3, "seed": 0})


@attrs.frozen
class Negated:
    """A metric that reverses the toy cosine: proves --metric is used."""

    name = "negated"

    def matrix(self, arrays: list[np.ndarray]) -> np.ndarray:
        flat = np.stack([np.ravel(a) / np.linalg.norm(a) for a in arrays])
        return -(flat @ flat.T)


class NegatedPlugin:
    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(Negated)


def put(store: EmbeddingStore, kind: str, subject: str, vector: list[float], space: Space = SPACE, n: int = 10) -> None:
    provenance = Provenance(data_fingerprint=f"fp-{kind}-{subject}", n_examples=n, created="2026-01-01T00:00:00")
    store.put(TaskEmbedding(np.array(vector), kind, subject, space, provenance))


@pytest.fixture
def registry(toy_registry: Any, fute_registry: Any) -> Any:
    """The core tests' toy plugin (method label-stats, metric dot, model keyword) plus ``negated``."""
    toy = next(p for p in toy_registry.host.pm.get_plugins() if type(p).__name__ == "ToyPlugin")
    return fute_registry(toy, NegatedPlugin())


@pytest.fixture
def hand_store(tmp_path: Path) -> Path:
    """Target [1, 0]; by cosine: LLM/close (0.995) > mid (0.707) > LLM/far (0) > other (-1)."""
    store = EmbeddingStore(tmp_path / "embeddings")
    put(store, "dataset", "target", [1.0, 0.0])
    put(store, "model", "LLM/far", [0.0, 1.0])
    put(store, "model", "LLM/close", [1.0, 0.1])
    put(store, "dataset", "mid", [1.0, 1.0])
    put(store, "model", "other", [-1.0, 0.0])
    return tmp_path


@pytest.fixture
def fute_cli() -> Any:
    """The ``fute`` group with these commands (wired by the lead; added here until then)."""
    from fute_kit.cli import FuteGroup, cli

    if "rank" in cli.commands:
        return cli
    return FuteGroup(name="fute", commands=[rank, evaluate, measure])


def test_rank_orders_by_similarity(registry: Any, hand_store: Path) -> None:
    ranking = rank_study("target", hand_store / "embeddings")
    assert ranking.labels() == ["model:LLM/close", "dataset:mid", "model:LLM/far", "model:other"]
    assert [c.rank for c in ranking.candidates] == [1, 2, 3, 4]
    assert ranking.candidates[0].similarity == pytest.approx(1 / np.sqrt(1.01))
    assert ranking.candidates[1].similarity == pytest.approx(np.sqrt(0.5))
    assert ranking.metric == "dot"  # the method's declared metric


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ("datasets", ["dataset:mid"]),
        ("models", ["model:LLM/close", "model:LLM/far", "model:other"]),
        ("prompts", ["model:LLM/close", "model:LLM/far"]),
    ],
)
def test_candidate_sets(registry: Any, hand_store: Path, candidates: str, expected: list[str]) -> None:
    assert rank_study("dataset:target", hand_store, candidates).labels() == expected


def test_chosen_metric_and_top(registry: Any, hand_store: Path) -> None:
    ranking = rank_study("target", hand_store, "all", metric="negated", top=2)
    assert ranking.labels() == ["model:other", "model:LLM/far"]
    assert ranking.metric == "negated"


def test_study_folder_uses_its_own_metric(registry: Any, study_config: dict, tmp_path: Path) -> None:
    study_config["similarity"] = {"metric": "negated"}
    run_study(parse_config(study_config, registry), tmp_path, registry=registry, show_progress=False)
    ranking = rank_study("reviews", tmp_path, "models")
    assert ranking.metric == "negated"
    matrix = open_study(tmp_path).similarity
    assert matrix is not None
    row = matrix.values[matrix.labels.index("dataset:reviews")]
    expected = sorted(["model:good-detector", "model:prior"], key=lambda label: -row[matrix.labels.index(label)])
    assert ranking.labels() == expected
    for candidate in ranking.candidates:
        assert candidate.similarity == pytest.approx(matrix.get("dataset:reviews", candidate.label), abs=1e-5)


def test_resolve_label_bare_exact_ambiguous_unknown() -> None:
    labels = ["dataset:sst2", "model:sst2", "dataset:mnli", "model:LLM/a"]
    assert resolve_label("mnli", labels) == "dataset:mnli"
    assert resolve_label("model:sst2", labels) == "model:sst2"
    assert resolve_label("LLM/a", labels) == "model:LLM/a"
    with pytest.raises(DataError, match=r"ambiguous.*dataset:sst2 and model:sst2"):
        resolve_label("sst2", labels)
    with pytest.raises(UnknownSubjectError, match=r"did you mean 'dataset:mnli'"):
        resolve_label("mnl", labels)
    with pytest.raises(KeyError):
        resolve_label("dataset:qqp", labels)


def test_unknown_candidate_set_is_refused() -> None:
    with pytest.raises(DataError, match="choose one of datasets, models, prompts, all"):
        in_candidate_set("dataset:x", "tasks")


def test_only_the_target_of_its_kind(registry: Any, hand_store: Path) -> None:
    store = EmbeddingStore(hand_store / "lonely")
    put(store, "dataset", "a", [1.0, 0.0])
    put(store, "model", "m", [1.0, 0.0])
    with pytest.raises(DataError, match="no datasets to rank"):
        rank_study("a", hand_store / "lonely", "datasets")


def test_empty_store_and_missing_folder(registry: Any, tmp_path: Path) -> None:
    (tmp_path / "embeddings").mkdir()
    with pytest.raises(DataError, match="no embeddings in"):
        rank_study("x", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        rank_study("x", tmp_path / "nowhere")
    with pytest.raises(DataError, match="store is empty"):
        rank_candidates("x", [])


def test_several_spaces_need_a_choice(registry: Any, hand_store: Path) -> None:
    other = Space("none", "label-stats", {"buckets": 3, "seed": 1})
    put(EmbeddingStore(hand_store / "embeddings"), "dataset", "target", [0.0, 1.0], space=other)
    with pytest.raises(DataError, match="holds 2 spaces; choose one with --space"):
        rank_study("target", hand_store)
    assert rank_study("target", hand_store, space_id=SPACE.id).labels()[0] == "model:LLM/close"


def test_newest_embedding_of_a_subject_stands_for_it(registry: Any, hand_store: Path) -> None:
    store = EmbeddingStore(hand_store / "embeddings")
    provenance = Provenance(data_fingerprint="fp-new", n_examples=10, created="2026-06-01T00:00:00")
    store.put(TaskEmbedding(np.array([-1.0, 0.0]), "dataset", "mid", SPACE, provenance))
    ranking = rank_study("target", hand_store)
    assert ranking.labels().count("dataset:mid") == 1
    mid = next(c for c in ranking.candidates if c.label == "dataset:mid")
    assert mid.similarity == pytest.approx(-1.0)  # the newer embedding, opposite to the target


def test_rank_command_table_and_json(registry: Any, hand_store: Path, fute_cli: Any) -> None:
    runner = CliRunner()
    result = runner.invoke(fute_cli, ["rank", "target", "--out", str(hand_store), "--candidates", "prompts"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "prompts closest to dataset:target" in lines[0]
    assert lines[2].split() == ["1", f"{1 / np.sqrt(1.01):.4f}", "model", "LLM/close"]
    assert lines[3].split()[-1] == "LLM/far"
    result = runner.invoke(
        fute_cli, ["rank", "target", "--out", str(hand_store / "embeddings"), "--json", "--top", "1"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["target"] == "dataset:target" and data["metric"]["name"] == "dot"
    assert [c["label"] for c in data["candidates"]] == ["model:LLM/close"]


def test_rank_command_errors(registry: Any, hand_store: Path, fute_cli: Any) -> None:
    runner = CliRunner()
    result = runner.invoke(fute_cli, ["rank", "targt", "--out", str(hand_store)])
    assert result.exit_code == 2
    assert "did you mean 'dataset:target'" in result.output
    result = runner.invoke(fute_cli, ["rank", "target"])
    assert result.exit_code == 2 and "Missing option '--out'" in result.output


def test_command_offers_the_candidate_sets_selection_knows() -> None:
    choice = next(param.type for param in rank.params if param.name == "candidates")
    assert tuple(choice.choices) == CANDIDATE_SETS
    assert [in_candidate_set("model:llm/p", name) for name in CANDIDATE_SETS] == [False, True, True, True]
