"""Judging rankings against measured truth: metrics on hand-computed cases, baselines, ``fute evaluate/measure``."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from toy_plugins import TEXTS

from fute_kit import EmbeddingStore, Examples, Provenance, Space, TaskEmbedding
from fute_kit.accuracy import measure
from fute_kit.config import parse_config
from fute_kit.errors import DataError
from fute_kit.evaluation import EMBEDDING, evaluate_study
from fute_kit.label_free import label_free_scores, read_label_free, write_label_free
from fute_kit.pipeline import run_study
from fute_kit.predictions import PredictionCache
from fute_kit.ranking_metrics import random_scores, ranking_scores, spearman
from fute_kit.selection import open_study
from fute_kit.selection_cli import evaluate, rank
from fute_kit.selection_cli import measure as measure_command
from fute_kit.truth import read_truth

SPACE = Space("none", "label-stats", {"buckets": 3, "seed": 0})
LOG2_3 = math.log2(3)


@pytest.fixture
def fute_cli() -> Any:
    """The ``fute`` group with these commands (wired by the lead; added here until then)."""
    from fute_kit.cli import FuteGroup, cli

    if "evaluate" in cli.commands:
        return cli
    return FuteGroup(name="fute", commands=[rank, evaluate, measure_command])


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


# -- metrics on hand-computed cases -----------------------------------------------------------------
def test_ranking_scores_hand_computed() -> None:
    # Ranked order: a (0.2), b (0.8, the best), c (0.5). Min-max relevance: 0, 1, 0.5.
    scores = ranking_scores([3.0, 2.0, 1.0], [0.2, 0.8, 0.5], k=1)
    dcg = 0 + 1 / LOG2_3 + (math.sqrt(2) - 1) / 2
    ideal = 1 + (math.sqrt(2) - 1) / LOG2_3
    assert scores.ndcg == pytest.approx(dcg / ideal)
    assert scores.ndcg_at_k == pytest.approx(0.0)
    assert scores.regret_at_k == pytest.approx((0.8 - 0.2) / 0.8 * 100)
    assert scores.spearman == pytest.approx(-0.5)  # 1 - 6 * (4 + 1 + 1) / (3 * 8)
    assert scores.top1 == 0.0
    assert scores.best_rank == 2.0
    at2 = ranking_scores([3.0, 2.0, 1.0], [0.2, 0.8, 0.5], k=2)
    assert at2.regret_at_k == 0.0
    assert at2.ndcg_at_k == pytest.approx((1 / LOG2_3) / (1 + (math.sqrt(2) - 1) / LOG2_3))


def test_perfect_ranking_and_raw_relevance() -> None:
    perfect = ranking_scores([0.9, 0.5, 0.1], [0.7, 0.6, 0.2], k=2)
    assert (perfect.ndcg, perfect.ndcg_at_k, perfect.regret_at_k) == (pytest.approx(1.0), pytest.approx(1.0), 0.0)
    assert perfect.spearman == pytest.approx(1.0) and perfect.top1 == 1.0 and perfect.best_rank == 1.0
    raw = ranking_scores([1.0, 2.0], [1.0, 0.0], k=1, relevance="raw")  # gains 1 and 0: best is ranked second
    assert raw.ndcg == pytest.approx((1 / LOG2_3) / 1.0)
    with pytest.raises(DataError, match="non-negative"):
        ranking_scores([1.0, 2.0], [-1.0, 0.5], relevance="raw")


def test_spearman_with_ties() -> None:
    # Mid-ranks 1, 2.5, 2.5, 4 against 1, 2, 3, 4: 4.5 / sqrt(4.5 * 5).
    assert spearman([1, 2, 2, 3], [10, 20, 30, 40]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_undefined_metrics_are_none() -> None:
    flat = ranking_scores([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
    assert flat.ndcg is None and flat.ndcg_at_k is None and flat.spearman is None
    assert ranking_scores([1.0, 1.0, 1.0], [0.1, 0.5, 0.3]).spearman == 0.0  # a constant ranking: as random
    assert flat.top1 == 1.0  # every candidate is a best one
    losses = ranking_scores([1.0, 2.0], [-0.3, -0.1])
    assert losses.regret_at_k is None and losses.ndcg == pytest.approx(1.0)


def test_random_baseline_hand_computed() -> None:
    scores = random_scores([0.0, 0.0, 1.0], k=1)
    assert scores.ndcg == pytest.approx((1 + 1 / LOG2_3 + 0.5) / 3)
    assert scores.ndcg_at_k == pytest.approx(1 / 3)
    assert scores.regret_at_k == pytest.approx(200 / 3)
    assert scores.top1 == pytest.approx(1 / 3)
    assert scores.best_rank == pytest.approx(2.0)
    assert scores.spearman == 0.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_random_baseline_is_the_mean_over_all_orders(k: int) -> None:
    truth = [0.1, 0.9, 0.4, 0.9, 0.3]
    orders = [ranking_scores(np.argsort(p).astype(float), truth, k) for p in itertools.permutations(range(5))]
    expected = random_scores(truth, k)
    for field in ("ndcg", "ndcg_at_k", "regret_at_k", "spearman", "top1", "best_rank"):
        assert getattr(expected, field) == pytest.approx(np.mean([getattr(o, field) for o in orders])), field


def test_tied_predictions_score_the_mean_over_tie_breaks() -> None:
    truth = [0.3, 0.9, 0.1, 0.6, 0.5]
    tied = ranking_scores([5.0, 2.0, 2.0, 2.0, 1.0], truth, k=2)
    breaks = [
        ranking_scores([5.0, 2.0 + 0.1 * a, 2.0 + 0.1 * b, 2.0 + 0.1 * c, 1.0], truth, k=2)
        for a, b, c in itertools.permutations([0, 1, 2])
    ]
    for field in ("ndcg", "ndcg_at_k", "regret_at_k", "spearman", "top1", "best_rank"):
        assert getattr(tied, field) == pytest.approx(np.mean([getattr(o, field) for o in breaks])), field


# -- truth files ------------------------------------------------------------------------------------
def test_read_truth_and_its_errors(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "t.csv", [["target", "candidate", "score"], ["a", "m1", "0.5"], ["a", "m2", "1e-1"]])
    assert read_truth(good) == {"a": {"m1": 0.5, "m2": 0.1}}
    (tmp_path / "bom.csv").write_text("\ufefftarget,candidate,score\na,m1,1\n", encoding="utf-8")
    assert read_truth(tmp_path / "bom.csv") == {"a": {"m1": 1.0}}  # as spreadsheets save it
    bad = write_csv(tmp_path / "b.csv", [["target", "model", "acc"], ["a", "m1", "0.5"]])
    with pytest.raises(DataError, match=r"missing column\(s\) candidate, score; found target, model, acc"):
        read_truth(bad)
    text = write_csv(tmp_path / "x.csv", [["target", "candidate", "score"], ["a", "m1", "high"]])
    with pytest.raises(DataError, match=r"line 2: score 'high' is not a number"):
        read_truth(text)
    twice = write_csv(tmp_path / "d.csv", [["target", "candidate", "score"], ["a", "m", "1"], ["a", "m", "2"]])
    with pytest.raises(DataError, match="given twice"):
        read_truth(twice)
    with pytest.raises(DataError, match="does not exist"):
        read_truth(tmp_path / "missing.csv")


def test_read_truth_from_another_column(tmp_path: Path) -> None:
    """fute transfer's truth: gains (all losses here, so regret is undefined) and the accuracies after transfer."""
    header = ["target", "candidate", "score", "accuracy_after"]
    rows = [header, ["t", "s1", "-0.02", "0.88"], ["t", "s2", "-0.1", "0.8"]]
    path = write_csv(tmp_path / "transfer.csv", rows)
    assert read_truth(path) == {"t": {"s1": -0.02, "s2": -0.1}}
    after = read_truth(path, "accuracy_after")
    assert after == {"t": {"s1": 0.88, "s2": 0.8}}
    assert ranking_scores(np.array([0.1, 0.9]), np.array([-0.02, -0.1])).regret_at_k is None  # the best gain is < 0
    chose_s2 = ranking_scores(np.array([0.1, 0.9]), np.array(list(after["t"].values())), k=1)
    assert chose_s2.regret_at_k == pytest.approx((0.88 - 0.8) / 0.88 * 100)  # Poth et al.: the loss vs the best
    with pytest.raises(DataError, match=r"missing column\(s\) macro_f1; .*target,candidate,macro_f1"):
        read_truth(path, "macro_f1")


# -- label-free scores ---------------------------------------------------------------------------------
def put_model(root: Path, subject: str, probs: list[list[float]], names: tuple[str, ...], n_examples: int = 2) -> None:
    """An MTE plus its cached predictions on U (key = the MTE's data fingerprint)."""
    key = f"fp-{subject.replace('/', '-')}"
    inputs = Examples(texts=[f"text {i}" for i in range(len(probs))])
    PredictionCache(root / "predictions").put(key, inputs, inputs.with_predictions(np.array(probs), "soft", names))
    provenance = Provenance(data_fingerprint=key, n_examples=n_examples, created="2026-01-01")
    vector = np.array(probs).mean(axis=0)
    if names[0] != "neg":
        vector = vector[::-1]
    EmbeddingStore(root / "embeddings").put(TaskEmbedding(vector, "model", subject, SPACE, provenance))


def put_dataset(root: Path, subject: str, vector: list[float], n_examples: int) -> None:
    provenance = Provenance(data_fingerprint=f"fp-{subject}", n_examples=n_examples, created="2026-01-01")
    EmbeddingStore(root / "embeddings").put(TaskEmbedding(np.array(vector), "dataset", subject, SPACE, provenance))


def test_label_free_scores_hand_computed(tmp_path: Path) -> None:
    put_model(tmp_path, "L/sure", [[1.0, 0.0], [0.0, 1.0]], ("neg", "pos"))
    put_model(tmp_path, "L/unsure", [[0.5, 0.5], [0.5, 0.5]], ("neg", "pos"))
    # Same classes in the other column order: [pos, neg] = [0, 1] means "neg" for both texts.
    put_model(tmp_path, "L/always-neg", [[0.0, 1.0], [0.0, 1.0]], ("pos", "neg"))
    scores = label_free_scores(open_study(tmp_path))
    ln2 = math.log(2)
    assert scores["mutual_information"] == pytest.approx(
        {"model:L/sure": ln2, "model:L/unsure": 0.0, "model:L/always-neg": 0.0}, abs=1e-9
    )
    assert scores["label_entropy"] == pytest.approx(
        {"model:L/sure": ln2, "model:L/unsure": 0.0, "model:L/always-neg": 0.0}, abs=1e-9
    )
    assert scores["neg_mean_entropy"] == pytest.approx(
        {"model:L/sure": 0.0, "model:L/unsure": -ln2, "model:L/always-neg": 0.0}, abs=1e-9
    )
    # Mean probabilities: text 0 -> neg (5/6), text 1 -> tie 0.5/0.5 -> neg (first class). Votes: neg, neg.
    expected = {"model:L/sure": 0.5, "model:L/unsure": 1.0, "model:L/always-neg": 1.0}
    assert scores["ensemble_mean"] == pytest.approx(expected)
    assert scores["ensemble_vote"] == pytest.approx(expected)


# -- whole evaluations ----------------------------------------------------------------------------
PROMPT_MODELS = [
    {"name": "LLM", "source": "keyword", "prompts": {"good": {"keyword": "good"}, "bad": {"keyword": "bad"},
                                                     "fun": {"keyword": "fun"}}},
    {"name": "prior", "source": "constant", "probabilities": {"negative": 0.5, "positive": 0.5}},
]  # fmt: skip


@pytest.fixture
def prompt_study(toy_registry: Any, study_config: dict, tmp_path: Path) -> Path:
    """A real (toy) study: two datasets, three prompts of one LLM, a constant model."""
    study_config = {**study_config, "models": PROMPT_MODELS}
    out = tmp_path / "study"
    run_study(parse_config(study_config, toy_registry), out, registry=toy_registry, show_progress=False)
    return out


PROMPT_TRUTH = [
    ["target", "candidate", "score"],
    ["reviews", "LLM/good", "0.9"],
    ["reviews", "model:LLM/bad", "0.3"],
    ["dataset:reviews", "LLM/fun", "0.6"],
    ["flipped", "LLM/good", "0.2"],
    ["flipped", "LLM/bad", "0.7"],
    ["flipped", "LLM/fun", "0.5"],
]


def test_evaluate_study_with_prompt_baselines(prompt_study: Path, tmp_path: Path) -> None:
    truth = write_csv(tmp_path / "truth.csv", PROMPT_TRUTH)
    evaluation = evaluate_study(prompt_study, truth, k=2, textemb=prompt_study)
    assert [t.target for t in evaluation.targets] == ["dataset:reviews", "dataset:flipped"]
    matrix = open_study(prompt_study).similarity
    assert matrix is not None
    reviews = evaluation.targets[0]
    assert reviews.candidates == ("model:LLM/good", "model:LLM/bad", "model:LLM/fun")
    sims = [matrix.get("dataset:reviews", c) for c in reviews.candidates]
    assert reviews.results[EMBEDDING] == ranking_scores(sims, [0.9, 0.3, 0.6], k=2)
    assert reviews.results["random"] == random_scores([0.9, 0.3, 0.6], k=2)
    assert reviews.results["textemb"] == reviews.results[EMBEDDING]  # the same folder as its own baseline
    assert reviews.results["size"] == reviews.results["random"]  # every MTE saw the same U
    assert any("same number of examples" in note for note in reviews.notes)
    lf = label_free_scores(open_study(prompt_study))
    for name in ("mutual_information", "label_entropy", "neg_mean_entropy", "ensemble_mean", "ensemble_vote"):
        predicted = [lf[name][c] for c in reviews.candidates]
        assert reviews.results[name] == ranking_scores(predicted, [0.9, 0.3, 0.6], k=2), name
    means = evaluation.means()
    per_target = [t.results[EMBEDDING].ndcg for t in evaluation.targets]
    assert means[EMBEDDING]["ndcg"] == pytest.approx(np.mean(per_target))
    assert means[EMBEDDING]["targets"] == 2
    intervals = evaluation.intervals()
    assert intervals[EMBEDDING]["ndcg@2 - textemb"] == [0.0, 0.0]  # paired with TextEmb: here its own folder
    assert "ndcg@2 - textemb" not in intervals["random"]
    text = evaluation.markdown()
    assert "## Mean over targets (2)" in text and "| ensemble_vote |" in text and "## dataset:flipped" in text


def test_rank_one_llms_prompt_pool(prompt_study: Path, fute_cli: Any) -> None:
    runner = CliRunner()
    result = runner.invoke(fute_cli, ["rank", "reviews", "--out", str(prompt_study), "--llm", "LLM", "--json"])
    assert result.exit_code == 0, result.output
    ranked = [c["label"] for c in json.loads(result.output)["candidates"]]
    assert sorted(ranked) == ["model:LLM/bad", "model:LLM/fun", "model:LLM/good"]  # not the constant model
    unknown = runner.invoke(fute_cli, ["rank", "reviews", "--out", str(prompt_study), "--llm", "GPT"])
    assert unknown.exit_code == 2 and "no prompts of LLM 'GPT' here; LLMs with prompts: LLM" in unknown.output
    clash = runner.invoke(
        fute_cli, ["rank", "reviews", "--out", str(prompt_study), "--llm", "LLM", "--candidates", "datasets"]
    )
    assert clash.exit_code == 2 and "--llm picks prompts" in clash.output


def test_label_free_on_the_targets_own_inputs(
    prompt_study: Path, toy_registry: Any, study_config: dict, tmp_path: Path
) -> None:
    """fute measure --label-free scores prompts on the target's inputs; fute evaluate ranks by them (NAME@target)."""
    config = parse_config({**study_config, "models": PROMPT_MODELS}, toy_registry)
    measured = measure(config, "reviews", models=["LLM/good", "LLM/bad", "LLM/fun"], registry=toy_registry)
    scores = {(c, b): v for _, c, b, v in measured.label_free}
    for keyword in ("good", "bad", "fun"):  # a keyword model predicts positive exactly where its keyword is
        share = sum(keyword in t for t in TEXTS) / len(TEXTS)
        histogram_entropy = -sum(p * math.log(p) for p in (share, 1 - share) if p > 0)
        assert scores[(f"LLM/{keyword}", "label_entropy")] == pytest.approx(histogram_entropy)
    path = write_label_free(measured.label_free, tmp_path / "label-free.csv")
    truth = write_csv(tmp_path / "truth.csv", PROMPT_TRUTH)
    evaluation = evaluate_study(prompt_study, truth, k=2, target_label_free=path, spell_sample=None)
    reviews, flipped = evaluation.targets
    order = ("LLM/good", "LLM/bad", "LLM/fun")
    for name in ("label_entropy", "mutual_information", "mdl", "ensemble_vote"):
        predicted = [scores[(c, name)] for c in order]
        assert reviews.results[f"{name}@target"] == ranking_scores(predicted, [0.9, 0.3, 0.6], k=2), name
    assert not any("@target" in name for name in flipped.results)  # flipped's own inputs were not measured
    # Measuring one prompt again keeps the others' rows, and the ensemble scores made with it
    again = measure(config, "reviews", models=["LLM/bad"], registry=toy_registry)
    write_label_free(again.label_free, path, append=True)
    assert {row[:3] for row in read_label_free(path)} == {row[:3] for row in measured.label_free}
    with pytest.raises(DataError, match=r"do not exist .*--label-free"):
        read_label_free(tmp_path / "none.csv")


def test_size_baseline_puts_larger_datasets_first(toy_registry: Any, tmp_path: Path) -> None:
    put_dataset(tmp_path, "target", [1.0, 0.0], 50)
    put_dataset(tmp_path, "small", [1.0, 0.1], 10)
    put_dataset(tmp_path, "large", [0.0, 1.0], 1000)
    put_dataset(tmp_path, "medium", [1.0, 1.0], 100)
    labels = ["dataset:target", "dataset:small", "dataset:large", "dataset:medium"]
    from fute_kit.similarity import similarity_matrix

    embeddings = {e.label: e for e in open_study(tmp_path).embeddings}
    similarity_matrix([embeddings[label] for label in labels], registry=toy_registry).write(tmp_path / "similarity.csv")
    (tmp_path / "study.json").write_text(json.dumps({"space": SPACE.to_dict(), "metric": {"name": "dot"}}))
    truth = write_csv(tmp_path / "t.csv", [["target", "candidate", "score"], ["target", "small", "1"],
                                           ["target", "large", "3"], ["target", "medium", "2"]])  # fmt: skip
    result = evaluate_study(tmp_path, truth).targets[0].results
    assert result["size"].spearman == pytest.approx(1.0) and result["size"].ndcg == pytest.approx(1.0)
    assert result[EMBEDDING].spearman == pytest.approx(-1.0)  # small is most similar, large least
    assert "mutual_information" not in result  # datasets have no predictions

    # fute transfer's truth says how many examples each source was trained on: the size baseline ranks by that
    sized = write_csv(tmp_path / "s.csv", [["target", "candidate", "score", "source_examples"],
                                           ["target", "small", "1", "900"], ["target", "large", "3", "20"],
                                           ["target", "medium", "2", "300"]])  # fmt: skip
    evaluation = evaluate_study(tmp_path, sized)
    assert evaluation.targets[0].results["size"].spearman == pytest.approx(-1.0)
    assert any("source_examples" in note for note in evaluation.notes)

    # a target whose row of the matrix is not complete yet is left out with --min-candidates
    partial = write_csv(tmp_path / "p.csv", [["target", "candidate", "score"], ["target", "small", "1"],
                                             ["target", "large", "3"], ["medium", "small", "1"],
                                             ["medium", "large", "2"], ["medium", "target", "0"]])  # fmt: skip
    assert len(evaluate_study(tmp_path, partial).targets) == 2
    complete = evaluate_study(tmp_path, partial, min_candidates=3)
    assert [t.target for t in complete.targets] == ["dataset:medium"]
    assert any("dataset:target: skipped, it has 2 candidate(s), fewer than 3" in note for note in complete.notes)
    with pytest.raises(DataError, match="at least 4 candidates"):
        evaluate_study(tmp_path, partial, min_candidates=4)


def test_evaluate_errors(prompt_study: Path, tmp_path: Path) -> None:
    unknown = write_csv(tmp_path / "u.csv", [["target", "candidate", "score"], ["reviews", "LLM/god", "1"],
                                             ["reviews", "LLM/bad", "0"]])  # fmt: skip
    with pytest.raises(DataError, match=r"candidate of 'reviews' 'LLM/god'.*did you mean 'model:LLM/good'"):
        evaluate_study(prompt_study, unknown)
    single = write_csv(tmp_path / "s.csv", [["target", "candidate", "score"], ["reviews", "LLM/bad", "0"]])
    with pytest.raises(DataError, match="at least 2 candidates"):
        evaluate_study(prompt_study, single)
    (tmp_path / "bare").mkdir()
    put_dataset(tmp_path / "bare", "a", [1.0, 0.0], 3)
    with pytest.raises(DataError, match=r"no similarity\.csv"):
        evaluate_study(tmp_path / "bare", single)


def test_targets_the_study_lacks_are_skipped_only_when_asked(prompt_study: Path, tmp_path: Path) -> None:
    """One truth file for several one-target studies (prompts_on_target.py): each judges the targets it embedded."""
    elsewhere = [["news", "LLM/good", "0.1"], ["news", "LLM/bad", "0.2"]]  # a target of another study
    truth = write_csv(tmp_path / "truth.csv", PROMPT_TRUTH + elsewhere)
    with pytest.raises(DataError, match="target 'news' is not among"):
        evaluate_study(prompt_study, truth, spell_sample=None)
    lf_rows = [
        ["news", "LLM/bad", "mdl", "1"],
        *(["reviews", f"LLM/{m}", "mdl", "0.5"] for m in ("good", "bad", "fun")),
    ]
    lf = write_csv(tmp_path / "lf.csv", [["target", "candidate", "baseline", "score"], *lf_rows])
    judged = evaluate_study(prompt_study, truth, spell_sample=None, skip_absent_targets=True, target_label_free=lf)
    whole = evaluate_study(prompt_study, write_csv(tmp_path / "t.csv", PROMPT_TRUTH), spell_sample=None)
    assert [t.target for t in judged.targets] == [t.target for t in whole.targets]
    assert judged.targets[0].results[EMBEDDING] == whole.targets[0].results[EMBEDDING]
    assert "mdl@target" in judged.targets[0].results and "news: skipped, not embedded in this study" in judged.notes
    nowhere = write_csv(tmp_path / "n.csv", [["target", "candidate", "score"], *elsewhere])
    with pytest.raises(DataError, match=r"no target of .*n\.csv is embedded in .*\(absent: news\)"):
        evaluate_study(prompt_study, nowhere, spell_sample=None, skip_absent_targets=True)


def test_evaluate_command_writes_json(prompt_study: Path, tmp_path: Path, fute_cli: Any) -> None:
    truth = write_csv(tmp_path / "truth.csv", PROMPT_TRUTH)
    runner = CliRunner()
    result = runner.invoke(fute_cli, ["evaluate", "--out", str(prompt_study), "--truth", str(truth), "--k", "2"])
    assert result.exit_code == 0, result.output
    assert "| embedding |" in result.output and "ndcg@2" in result.output
    saved = json.loads((prompt_study / "evaluation.json").read_text())
    assert saved["k"] == 2 and set(saved["mean"]) >= {"embedding", "random", "size", "mutual_information"}
    assert saved["targets"][0]["candidates"][0]["label"] == "model:LLM/good"
    result = runner.invoke(fute_cli, ["evaluate", str(prompt_study), "--truth", str(truth), "--json"])  # old: OUT
    assert result.exit_code == 0 and json.loads(result.stdout)["k"] == 3
    assert "positional OUT is the old spelling of --out" in result.stderr
    bad = write_csv(tmp_path / "bad.csv", [["target", "score"], ["reviews", "1"]])
    result = runner.invoke(fute_cli, ["evaluate", "--out", str(prompt_study), "--truth", str(bad)])
    assert result.exit_code == 2 and "missing column(s) candidate" in result.output


# -- measuring the truth ------------------------------------------------------------------------------
MEASURE_TOML = """
[space]
surrogate = "none"
method = "label-stats"

[unlabeled]
source = "inline"
texts = ["u1", "u2"]

[[datasets]]
name = "reviews"
source = "inline"
texts = ["a", "b", "c", "d", "e"]
labels = ["positive", "negative", "positive", "positive", "negative"]

[[models]]
name = "LLM"
source = "constant"
[models.prompts]
yes-man = { probabilities = { Positive = 0.8, negative = 0.2 } }
no-man = { probabilities = { positive = 0.1, negative = 0.9 } }
"""


def test_measure_accuracy_with_constant_models(toy_registry: Any, tmp_path: Path, fute_cli: Any) -> None:
    config = tmp_path / "study.toml"
    config.write_text(MEASURE_TOML)
    out = tmp_path / "truth.csv"
    write_csv(out, [["target", "candidate", "score"], ["other", "LLM/yes-man", "0.1"], ["reviews", "LLM/no-man", "0"]])
    runner = CliRunner()
    label_free = tmp_path / "label-free.csv"
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "reviews", "--out", str(out), "--append",
                                      "--label-free", str(label_free)])  # fmt: skip
    assert result.exit_code == 0, result.output
    # constant answers: one predicted label on every input, and each prompt as sure as its probabilities
    rows = {(t, c, b): v for t, c, b, v in read_label_free(label_free)}
    assert rows[("reviews", "LLM/no-man", "label_entropy")] == 0.0
    assert rows[("reviews", "LLM/no-man", "neg_mean_entropy")] == pytest.approx(
        0.1 * math.log(0.1) + 0.9 * math.log(0.9)
    )
    # Label names match case-insensitively ("Positive"); 3 of 5 are positive.
    assert read_truth(out) == {
        "other": {"LLM/yes-man": 0.1},
        "reviews": {"LLM/yes-man": pytest.approx(0.6), "LLM/no-man": pytest.approx(0.4)},
    }
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "reviews", "--out", str(out),
                                      "--model", "LLM/no-man", "--limit", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert list(read_truth(out)) == ["reviews"] and list(read_truth(out)["reviews"]) == ["LLM/no-man"]


def test_measure_errors(toy_registry: Any, tmp_path: Path, fute_cli: Any) -> None:
    config = tmp_path / "study.toml"
    config.write_text(MEASURE_TOML.replace("no-man = { probabilities = { positive", "no-man = { probabilities = { yes"))
    runner = CliRunner()
    out = str(tmp_path / "t.csv")
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "reviews", "--out", out])
    assert result.exit_code == 2
    assert "model 'LLM/no-man' predicts labels ['negative', 'yes']" in result.output
    assert "dataset 'reviews' has labels ['negative', 'positive']" in result.output
    assert not Path(out).exists()
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "review", "--out", out])
    assert result.exit_code == 2 and "did you mean 'reviews'" in result.output
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "reviews", "--split", "test", "--out", out])
    assert result.exit_code == 2 and "source 'inline' has no 'split' option" in result.output
    result = runner.invoke(fute_cli, ["measure", str(config), "--dataset", "reviews", "--model", "x", "--out", out])
    assert result.exit_code == 2 and "no model 'x'" in result.output


def test_ensembles_form_per_label_set_of_one_llm(tmp_path: Path) -> None:
    # One LLM with prompts of two tasks: each task's prompts vote among themselves.
    put_model(tmp_path, "L/sent-a", [[1.0, 0.0], [0.0, 1.0]], ("neg", "pos"))
    put_model(tmp_path, "L/sent-b", [[1.0, 0.0], [1.0, 0.0]], ("neg", "pos"))
    put_model(tmp_path, "L/subj-a", [[1.0, 0.0], [0.0, 1.0]], ("obj", "subj"))
    put_model(tmp_path, "L/subj-b", [[0.0, 1.0], [0.0, 1.0]], ("obj", "subj"))
    scores = label_free_scores(open_study(tmp_path))
    assert set(scores["ensemble_mean"]) == {"model:L/sent-a", "model:L/sent-b", "model:L/subj-a", "model:L/subj-b"}
