"""The report plugin: the HTML report and its figures, the study_finished hook, and ``fute report``.

The study is synthetic (no model runs): TaskEmb-style matrix embeddings with rich provenance. The
fixtures live here rather than in a conftest.py, whose module name would clash with other test folders'.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
from click.testing import CliRunner

from fute_kit import EmbeddingStore, Examples, MethodResult, Provenance, RunContext, Space, TaskEmbedding, hookimpl
from fute_kit.cli import FuteGroup
from fute_kit.config import parse_config
from fute_kit.errors import DataError
from fute_kit.pipeline import run_study
from fute_kit.similarity import SimilarityMatrix
from fute_kit_report import build_report
from fute_kit_report.figures import cluster_order, embedding_map, prepare_vectors, similarity_distance

os.environ.setdefault("FUTE_KIT_NO_PROGRESS", "1")

SPACE = Space("tiny-surrogate", "fisher-toy", {"seed": 0})
SUBJECTS = [
    ("dataset", "sst2"),
    ("dataset", "imdb"),
    ("dataset", "mnli"),
    ("model", "bert-sst2"),
    ("model", "LLM/short"),
    ("model", "LLM/long"),
    ("model", "other/p1"),
    ("model", "odd<b>&name"),
]


def _cosine(arrays: list[np.ndarray]) -> np.ndarray:
    flat = np.stack([a.reshape(-1) / np.linalg.norm(a) for a in arrays])
    return flat @ flat.T


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    store = EmbeddingStore(tmp_path / "embeddings")
    sentiment, nli = rng.random((3, 6)), rng.random((3, 6))
    embeddings = []
    for i, (kind, subject) in enumerate(SUBJECTS):
        base = nli if subject in ("mnli", "other/p1") else sentiment
        array = base + 0.2 * rng.random((3, 6))
        array[0] *= 1000.0  # one layer far larger than the others, as Fisher rows are
        details = {
            "warnings": ["3 inputs were truncated"] if i == 0 else [],
            "training": {"loss": [2.0, 1.0, 0.5]},
            "agreement": 0.75,
            "truncated": 3,
        }
        if kind == "model" and "/" in subject:
            details["accounting"] = {"requests": 10, "prompt_tokens": 1500, "cost_usd": 0.25}
        provenance = Provenance(data_fingerprint=f"fp{i}", n_examples=100 * (i + 1), seconds=1.5, details=details,
                                created="2026-01-01T00:00:00+00:00")  # fmt: skip
        embedding = TaskEmbedding(array, kind, subject, SPACE, provenance)
        store.put(embedding)
        embeddings.append(embedding)
    matrix = SimilarityMatrix([e.label for e in embeddings], _cosine([e.array for e in embeddings]), "cosine")
    matrix.write(tmp_path / "similarity.csv", tmp_path / "rankings.json")
    jobs = [{"kind": e.kind, "name": e.subject, "status": "computed", "fingerprint": e.provenance.data_fingerprint}
            for e in embeddings]  # fmt: skip
    failed = {"kind": "model", "name": "crashy", "status": "failed", "fingerprint": "", "error": "RuntimeError: boom"}
    jobs.append(failed)
    summary = {"config": "study.toml", "space": SPACE.to_dict(), "metric": {"name": "cosine", "options": {}},
               "jobs": jobs}  # fmt: skip
    (tmp_path / "study.json").write_text(json.dumps(summary))
    return tmp_path


@attrs.frozen
class MeanLabel:
    """A toy method: the mean label vector (numpy only)."""

    name = "mean-label"
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("toy-cos", {})

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        if examples.label_kind == "hard":
            probs = np.eye(examples.num_classes)[examples.labels]
        else:
            probs = np.asarray(examples.labels, dtype=np.float64)
        return MethodResult(np.concatenate([probs.mean(axis=0), [1.0]]), details={"loss": [1.0, 0.1]})


@attrs.frozen
class ToyCos:
    name = "toy-cos"

    def matrix(self, arrays: list[np.ndarray]) -> np.ndarray:
        return _cosine(arrays)


class ToyPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(MeanLabel)

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(ToyCos)


@pytest.fixture
def report_registry(fute_registry: Any) -> Any:
    """The report plugin plus a numpy-only method and metric, as the process-wide registry."""
    import fute_kit_report

    return fute_registry(fute_kit_report, ToyPlugin())


PNG = b"\x89PNG\r\n\x1a\n"


def external_links(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]*)""", page, flags=re.I)


def test_report_files_and_content(study_dir: Path) -> None:
    built = build_report(study_dir)
    assert built.html == study_dir / "report.html"
    names = sorted(p.name for p in (study_dir / "figures").glob("*.png"))
    assert names == ["embedding_map.png", "similarity_heatmap.png"]
    for path in built.figures:
        assert path.read_bytes().startswith(PNG)
    page = built.html.read_text()
    assert external_links(page) == []
    assert "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == 2
    assert "fisher-toy(seed=0) on tiny-surrogate" in page  # the space, in the header
    assert "odd&lt;b&gt;&amp;name" in page and "odd<b>" not in page  # names are escaped
    assert "2.000 → 0.500" in page  # training loss first → last, found under details.training
    assert "3 inputs were truncated" in page and "RuntimeError: boom" in page
    assert "<b>4,500</b><span>prompt_tokens</span>" in page  # accounting totals over the three prompts
    assert "closest 5 datasets" in page and "closest 5 models" in page
    assert not list(study_dir.glob("**/*.tmp"))


def test_report_shows_evaluation(study_dir: Path) -> None:
    evaluation = {
        "truth": "truth.csv",
        "k": 3,
        "relevance": "minmax",
        "mean": {
            "embedding": {"ndcg": 0.9, "ndcg@3": 0.8, "regret@3": 1.0, "spearman": 0.5, "top1": 1.0,
                          "best_rank": 1.0, "targets": 2},
            "random": {"ndcg": 0.7, "ndcg@3": 0.5, "regret@3": 9.0, "spearman": 0.0, "top1": 0.3,
                       "best_rank": 2.5, "targets": 2},
        },
        "targets": [{"target": "dataset:sst2", "candidates": [], "results": {}, "notes": ["a note"]}],
        "notes": [],
    }  # fmt: skip
    (study_dir / "evaluation.json").write_text(json.dumps(evaluation))
    built = build_report(study_dir)
    assert (study_dir / "figures" / "evaluation.png").read_bytes().startswith(PNG)
    page = built.html.read_text()
    assert "Evaluation against measured truth" in page and "a note" in page
    assert "<span class='best'>0.800</span>" in page and "<span class='best'>1.000</span>" in page  # regret: lower
    assert page.count('src="data:image/png;base64,') == 3


def test_report_of_a_study_where_everything_failed(tmp_path: Path) -> None:
    jobs = [{"kind": "dataset", "name": "d", "status": "failed", "fingerprint": "", "error": "DataError: empty"}]
    (tmp_path / "study.json").write_text(json.dumps({"space": {"method": "m"}, "metric": {}, "jobs": jobs}))
    page = build_report(tmp_path).html.read_text()
    assert "DataError: empty" in page and "no embeddings" in page


def test_report_needs_a_study(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no study"):
        build_report(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        build_report(tmp_path / "missing")


def test_cluster_order_keeps_blocks_together() -> None:
    # Two blocks (a: 0, 2, 4; b: 1, 3) interleaved; clustering must make each block contiguous.
    block = np.array([0, 1, 0, 1, 0])
    sim = np.where(block[:, None] == block[None, :], 0.9, 0.1)
    sim[[0, 2], [2, 0]] = 0.95
    np.fill_diagonal(sim, 1.0)
    order = cluster_order(sim)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    labels = block[order].tolist()
    assert labels in ([0, 0, 0, 1, 1], [1, 1, 0, 0, 0])
    assert abs(order.tolist().index(0) - order.tolist().index(2)) == 1  # the closest pair is adjacent


def test_provenance_values_as_methods_record_them() -> None:
    from fute_kit_report.report import _first_value, _loss

    taskemb = {"loss": "ce", "train_loss_first": 0.9, "train_loss_last": 0.2, "probe_loss_before": 0.8,
               "probe_loss_after": 0.3, "final_loss": 0.25, "held_out_losses": [0.7, 0.5]}  # fmt: skip
    assert _loss(taskemb) == (0.9, 0.2)
    assert _loss({"probe_loss_before": 0.8, "probe_loss_after": 0.3}) == (0.8, 0.3)
    assert _loss({"training": {"losses": [2.0, 1.0, 0.5]}}) == (2.0, 0.5)
    assert _loss({"loss": "ce"}) == (None, None)
    assert _first_value({"agreement_before": 0.5, "agreement": 0.9}, "agreement") == 0.9
    assert _first_value({"stats": {"inputs_truncated": 4}}, "truncated") == 4


def test_distance_and_vectors() -> None:
    sim = np.array([[1.0, 0.2], [0.2, 1.0]])
    np.testing.assert_allclose(similarity_distance(sim), [[0.0, 0.8], [0.8, 0.0]])
    matrix = np.array([[1000.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(prepare_vectors([matrix])[0], [1 / np.sqrt(2), 0, 0, 1 / np.sqrt(2)])


def test_maps() -> None:
    rng = np.random.default_rng(1)
    arrays = [rng.random((3, 4)) for _ in range(6)]
    coords, axes, note = embedding_map(arrays, None, "pca")
    assert coords.shape == (6, 2) and axes[0].startswith("PC 1") and "row-normalised" in note
    sim = np.corrcoef(np.stack([a.ravel() for a in arrays]))
    coords, axes, note = embedding_map([*arrays[:5], rng.random(5)], sim, "pca")
    assert coords.shape == (6, 2) and "MDS" in note  # different shapes: from the similarities
    # Classical MDS recovers distances of points that lie in a plane.
    points = rng.random((5, 2))
    gram = points @ points.T
    sim2 = gram - (np.diag(gram)[:, None] + np.diag(gram)[None, :]) / 2 + 1.0  # s_ii = 1, d = |p_i - p_j|^2 / 2
    coords, _, _ = embedding_map([np.zeros(1)] * 5, sim2, "mds")
    d_true = np.linalg.norm(points[:, None] - points[None], axis=2)
    d_got = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    np.testing.assert_allclose(d_got, d_true, atol=1e-6)


def test_tsne_map_when_sklearn_is_installed(study_dir: Path) -> None:
    pytest.importorskip("sklearn")
    built = build_report(study_dir, map_method="tsne")
    assert "t-SNE" in built.html.read_text()


# -- through the core ---------------------------------------------------------------------------
TEXTS = ["good", "bad", "fine", "awful", "great", "poor"]
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"]


def test_report_written_after_a_study(report_registry: Any, tmp_path: Path) -> None:
    config = {
        "space": {"surrogate": "none", "method": "mean-label"},
        "unlabeled": {"source": "inline", "texts": TEXTS},
        "datasets": [
            {"name": "reviews", "source": "inline", "texts": TEXTS, "labels": LABELS},
            {"name": "skewed", "source": "inline", "texts": TEXTS, "labels": ["pos"] * 5 + ["neg"]},
        ],
        "models": [{"name": "LLM", "source": "constant",
                    "prompts": {"a": {"probabilities": {"pos": 0.9, "neg": 0.1}},
                                "b": {"probabilities": {"pos": 0.5, "neg": 0.5}}}}],
    }  # fmt: skip
    run_study(parse_config(config, report_registry), tmp_path, registry=report_registry, show_progress=False)
    page = (tmp_path / "report.html").read_text()
    assert "mean-label() on none" in page and "LLM/a" in page
    assert (tmp_path / "figures" / "similarity_heatmap.png").exists()
    assert "report:" in (tmp_path / "run.log").read_text()


def test_fute_report_command(report_registry: Any, study_dir: Path) -> None:
    group = FuteGroup(name="fute")  # plugin commands are loaded from the process-wide registry
    runner = CliRunner()
    result = runner.invoke(group, ["report", "--out", str(study_dir), "--map", "mds"])
    assert result.exit_code == 0, result.output
    assert f"wrote {study_dir / 'report.html'}" in result.output
    assert "classical MDS" in (study_dir / "report.html").read_text()
    empty = study_dir / "empty"
    empty.mkdir()
    result = runner.invoke(group, ["report", "--out", str(empty)])
    assert result.exit_code == 2 and "holds no study" in result.output
    old = runner.invoke(group, ["report", str(study_dir)])  # the old spelling, kept for one release
    assert old.exit_code == 0 and f"wrote {study_dir / 'report.html'}" in old.stdout
    assert "positional OUT is the old spelling of --out" in old.stderr
