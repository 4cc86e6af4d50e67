"""SPELL in ``fute evaluate`` without an LLM: a toy model source that scores its prompt text, the cache of the
scores, ``baselines.csv``, pooling seeds, and "unavailable" where a source cannot score prompts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import pytest
from click.testing import CliRunner
from toy_plugins import KeywordModel, ToyPlugin

from fute_kit import Examples, RunContext, hookimpl
from fute_kit.config import load_config
from fute_kit.errors import FuteError as EndpointError
from fute_kit.evaluation import EMBEDDING, evaluate_study, pool_evaluations
from fute_kit.pipeline import run_study
from fute_kit.prompt_perplexity import SPELL, SpellFallback, spell_score
from fute_kit.ranking_metrics import ranking_scores
from fute_kit.selection_cli import evaluate


@attrs.frozen
class ScoredKeyword(KeywordModel):
    """The keyword model, whose 'prompt' (the keyword written before each text) has a log-likelihood."""

    name = "scored-keyword"
    calls: ClassVar[list[int]] = []

    def prompt_log_likelihood(self, inputs: Examples, context: RunContext) -> np.ndarray:
        type(self).calls.append(len(inputs))
        # A longer keyword is a less likely prompt; each text adds its own share.
        return np.array([-0.5 * len(self.keyword) - 0.01 * len(t) for t in inputs.texts])


@attrs.frozen
class UnreachableKeyword(KeywordModel):
    """A keyword model whose prompt scoring needs an endpoint that is down."""

    name = "unreachable-keyword"

    def prompt_log_likelihood(self, inputs: Examples, context: RunContext) -> np.ndarray:
        raise EndpointError("http://127.0.0.1:9/v1/completions: the connection was refused after 6 retries")


class ScoringPlugin:
    @hookimpl
    def register_model_sources(self, register: Any) -> None:
        register(ScoredKeyword)
        register(UnreachableKeyword)


STUDY = """
[space]
surrogate = "none"
method = "label-stats"
options = {{ buckets = 3, seed = {seed} }}

[unlabeled]
source = "inline"
texts = ["good film", "bad film", "fun and good", "so bad", "dull", "great fun"]

[[datasets]]
name = "reviews"
source = "inline"
texts = ["good", "bad", "fun", "dull"]
labels = ["positive", "negative", "positive", "negative"]

[[models]]
name = "LLM"
source = "{source}"
prompts = {{ good = {{ keyword = "good" }}, fun = {{ keyword = "fun" }}, terrible = {{ keyword = "terrible" }} }}
"""
TRUTH = "target,candidate,score\nreviews,LLM/good,0.7\nreviews,LLM/fun,0.9\nreviews,LLM/terrible,0.5\n"


def make_study(tmp_path: Path, registry: Any, name: str, source: str = "scored-keyword", seed: int = 0) -> Path:
    config = tmp_path / f"{name}.toml"
    config.write_text(STUDY.format(source=source, seed=seed))
    out = tmp_path / name
    run_study(load_config(config, registry), out, registry=registry, show_progress=False)
    return out


@pytest.fixture
def registry(fute_registry: Any) -> Any:
    return fute_registry(ToyPlugin(), ScoringPlugin())


def test_spell_ranks_by_prompt_perplexity_and_caches(registry: Any, tmp_path: Path) -> None:
    out = make_study(tmp_path, registry, "study")
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    ScoredKeyword.calls.clear()
    evaluation = evaluate_study(out, truth, spell_sample=4)
    assert ScoredKeyword.calls == [4, 4, 4]  # each prompt scored once, on a sample of 4 texts of U
    target = evaluation.targets[0]
    texts = Examples(texts=["good film", "bad film", "fun and good", "so bad", "dull", "great fun"]).sample(4).texts
    expected = {c: spell_score(np.array([-0.5 * len(c.split("/")[1]) - 0.01 * len(t) for t in texts]))
                for c in target.candidates}  # fmt: skip
    assert dict(zip(target.candidates, target.baseline_scores[SPELL], strict=True)) == pytest.approx(expected)
    assert target.results[SPELL] == ranking_scores(list(expected.values()), target.truth)
    assert target.results[SPELL].spearman == pytest.approx(1.0)  # shorter keyword, lower perplexity, better
    assert evaluation.unavailable == {}
    # A second evaluation reads the cache: no LLM call; a larger sample is scored anew.
    assert evaluate_study(out, truth, spell_sample=4).targets[0].results[SPELL] == target.results[SPELL]
    assert ScoredKeyword.calls == [4, 4, 4]
    evaluate_study(out, truth, spell_sample=5)
    assert ScoredKeyword.calls == [4, 4, 4, 5, 5, 5]


def test_spell_reads_the_configuration_as_the_study_ran_it(registry: Any, tmp_path: Path) -> None:
    """study.json keeps the configuration with its --set overrides: SPELL needs neither the file nor the flags."""
    config = tmp_path / "study.toml"
    config.write_text(STUDY.format(source="scored-keyword", seed=0))
    out = tmp_path / "study"
    run_study(
        load_config(config, registry, overrides={"unlabeled.limit": 5}), out, registry=registry, show_progress=False
    )
    config.unlink()
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    ScoredKeyword.calls.clear()
    evaluation = evaluate_study(out, truth, spell_sample=4)
    assert evaluation.unavailable == {} and ScoredKeyword.calls == [4, 4, 4]
    assert json.loads((out / "study.json").read_text())["configuration"]["unlabeled"]["limit"] == 5


def test_spell_unavailable_when_the_source_cannot_score(registry: Any, tmp_path: Path) -> None:
    out = make_study(tmp_path, registry, "plain", source="keyword")
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    evaluation = evaluate_study(out, truth)
    assert SPELL not in evaluation.targets[0].results
    assert "cannot score prompt text (it has no prompt_log_likelihood method)" in evaluation.unavailable[SPELL]
    text = evaluation.markdown()
    assert "| spell | unavailable |" in text and "- spell unavailable: model source 'keyword' cannot" in text
    assert "method) (LLM/fun, LLM/good, LLM/terrible)" in text
    assert "mdl" in evaluation.targets[0].results  # the other baselines are still there


def test_spell_fallback_scores_what_the_source_cannot(registry: Any, tmp_path: Path) -> None:
    out = make_study(tmp_path, registry, "plain", source="keyword")
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    ScoredKeyword.calls.clear()
    # The fallback takes the options it shares with the prompt's source (keyword), then its own (sureness).
    fallback = SpellFallback("scored-keyword", {"sureness": 0.5})
    evaluation = evaluate_study(out, truth, spell_sample=4, spell_fallback=fallback)
    assert ScoredKeyword.calls == [4, 4, 4] and evaluation.unavailable == {}
    assert evaluation.targets[0].results[SPELL].spearman == pytest.approx(1.0)
    cached = json.loads(next((out / "perplexity").glob("*.json")).read_text())
    assert cached["scorer"] == "scored-keyword(sureness=0.5)"
    # Without the fallback, the cached scores of the fallback are not taken for the source's own.
    assert SPELL in evaluate_study(out, truth, spell_sample=4).unavailable and ScoredKeyword.calls == [4, 4, 4]
    broken = evaluate_study(out, truth, spell_sample=5, spell_fallback=SpellFallback("no-such-source"))
    assert "the fallback no-such-source() cannot be built" in broken.unavailable[SPELL]
    # The command's --spell-model is the fallback hf-prompted(path=LLM); this registry has no hf-prompted.
    args = ["--out", str(out), "--truth", str(truth), "--spell-sample", "6", "--spell-model", "qwen", "--json"]
    result = CliRunner().invoke(evaluate, args)
    assert result.exit_code == 0, result.output
    assert "the fallback hf-prompted(path='qwen') cannot be built" in json.loads(result.stdout)["unavailable"][SPELL]


def test_an_unreachable_endpoint_leaves_spell_to_the_fallback_or_unavailable(registry: Any, tmp_path: Path) -> None:
    out = make_study(tmp_path, registry, "down", source="unreachable-keyword")
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    alone = evaluate_study(out, truth, spell_sample=4)  # the other baselines stand; SPELL says why it is missing
    assert "connection was refused" in alone.unavailable[SPELL] and "mdl" in alone.targets[0].results
    rescued = evaluate_study(out, truth, spell_sample=4, spell_fallback=SpellFallback("scored-keyword"))
    assert rescued.unavailable == {} and SPELL in rescued.targets[0].results


def test_evaluate_writes_baselines_and_pools_seeds(registry: Any, tmp_path: Path) -> None:
    seeds = [make_study(tmp_path, registry, f"seed{s}", seed=s) for s in range(3)]
    truth = tmp_path / "truth.csv"
    truth.write_text(TRUTH)
    runner = CliRunner()
    args = ["--out", str(seeds[0]), "--truth", str(truth), "--spell-sample", "3", "--results", str(tmp_path / "all")]
    result = runner.invoke(evaluate, [*args, "--pool", str(seeds[1]), "--pool", str(seeds[2]), "--json"])
    assert result.exit_code == 0, result.output
    pooled = json.loads(result.stdout)
    assert len(pooled["targets"]) == 3 and pooled["targets"][1]["target"] == "dataset:reviews @ seed1"
    assert pooled["mean"][EMBEDDING]["targets"] == 3
    assert set(pooled["intervals"][SPELL]) >= {"spearman", "top1", "regret@1", "ndcg@3", "spearman - random"}
    with open(tmp_path / "all" / "baselines.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["baseline"] for r in rows} >= {"size", "mutual_information", "label_entropy", "neg_mean_entropy",
                                             "mdl", "ensemble_mean", "ensemble_vote", SPELL}  # fmt: skip
    assert len([r for r in rows if r["baseline"] == SPELL]) == 9  # 3 prompts x 3 seeds
    own = list(csv.DictReader(open(seeds[0] / "baselines.csv", newline="")))  # noqa: SIM115
    assert {r["target"] for r in own} == {"dataset:reviews"} and (seeds[0] / "evaluation.json").is_file()
    single = [evaluate_study(s, truth, spell_sample=3) for s in seeds]
    assert pool_evaluations(single).to_dict()["mean"] == pooled["mean"]
    result = runner.invoke(evaluate, ["--out", str(seeds[0]), "--truth", str(truth), "--pool", str(seeds[1])])
    assert result.exit_code == 2 and "--pool needs --results DIR" in result.output
