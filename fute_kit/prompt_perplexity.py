"""SPELL: ranking an LLM's prompts by the perplexity of the prompt text itself, a label-free baseline.

Gonen et al. 2022 ("Demystifying Prompts in Language Models via Perplexity Estimation", Findings of EMNLP 2023):
the lower the perplexity of a prompt, filled in with the task's inputs, the better the prompt tends to do.
Here each prompt's template is filled with a reproducible sample of U (the study's unlabelled text), the model
source scores every filled prompt with its optional ``prompt_log_likelihood(inputs, context)`` (the mean
log-probability of the prompt's tokens, ``fute_kit.components.ModelSource``), and the SPELL score is minus the
mean perplexity over the sample, ``-mean_x exp(-mean token log p)`` (higher = ranked first).

Scoring costs LLM calls, so the log-likelihoods are cached in ``OUT/perplexity/<model fingerprint>.json`` with
the fingerprint of the sample they score and the source that scored them. Where a study's model source cannot
score prompt text (the ``openai`` source on the local llama.cpp server), a ``fallback`` source of the same LLM may
(``hf-prompted`` with the LLM's local weights: ``fute evaluate --spell-model``), given every option of the prompt it
shares (prompt, labels, system message, few-shot examples...); else SPELL is reported unavailable with the reason
instead of failing the evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from fute_kit.atomic import atomic_write_text
from fute_kit.components import RunContext
from fute_kit.config import SourceRef, StudyConfig
from fute_kit.errors import FuteError
from fute_kit.examples import Examples
from fute_kit.prompts import is_prompt
from fute_kit.selection import Study

SPELL = "spell"
CAPABILITY = "prompt_log_likelihood"


@attrs.frozen
class SpellFallback:
    """A model source that scores prompts whose own source cannot: it takes every option of the prompt's source
    that it also has, then ``options`` (such as the path of the LLM's weights)."""

    source: str
    options: dict[str, Any] = attrs.field(factory=dict)

    def build(self, ref: SourceRef, registry: Any) -> Any:
        from fute_kit.options import option_fields

        spec = registry.get("model_source", self.source)
        shared = {f.name for f in option_fields(spec.cls)} & set(ref.options)
        options = {key: ref.options[key] for key in shared} | self.options
        return spec.build(options, owner=f"SPELL's {self.source} for model {ref.name!r}")

    def describe(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in sorted(self.options.items()))
        return f"{self.source}({settings})"


@attrs.frozen
class SpellScores:
    """SPELL scores by model label, and why some or all could not be had (empty when none is missing)."""

    scores: dict[str, float]
    unavailable: tuple[str, ...] = ()


def can_score_prompts(source: Any) -> bool:
    """Whether a model source has the optional prompt-text scoring capability."""
    return callable(getattr(source, CAPABILITY, None))


def spell_score(log_likelihoods: np.ndarray) -> float:
    """Minus the mean perplexity of the filled prompts, from each one's mean token log-probability."""
    return -float(np.exp(-np.asarray(log_likelihoods, dtype=np.float64)).mean())


def spell_scores(
    study: Study,
    *,
    sample: int = 32,
    fallback: SpellFallback | None = None,
    registry: Any = None,
    context: RunContext | None = None,
) -> SpellScores:
    """SPELL scores of the study's prompts (models named LLM/PROMPT), from the cache or by scoring the prompts."""
    from fute_kit.config import load_config, parse_config
    from fute_kit.pipeline import load_examples, model_fingerprint
    from fute_kit.registry import get_registry
    from fute_kit.study_folder import StudyFolder

    prompts = [e for e in study.embeddings if e.kind == "model" and is_prompt(e.label)]
    if not prompts:
        return SpellScores({})
    config_path = study.summary.get("config")
    ran = study.summary.get("configuration")  # the configuration as the study ran it (older studies: the file)
    if not config_path and not ran:
        return SpellScores({}, ("study.json names no configuration: SPELL needs the study's model sources and U",))
    registry = registry or get_registry()
    context = context or RunContext(show_progress=False)
    try:
        config = parse_config(ran, registry, config_path or "") if ran else load_config(config_path, registry)
    except (FuteError, OSError) as exc:
        return SpellScores({}, (f"cannot read the study's configuration {config_path}: {exc}",))
    if config.unlabeled is None:
        return SpellScores({}, (f"{config_path} has no [unlabeled] section to fill the prompts with",))
    inputs = load_examples(config.unlabeled, registry, context).unlabeled()
    texts = inputs.sample(sample)
    scores: dict[str, float] = {}
    missing: dict[str, list[str]] = {}  # why -> the prompts it concerns
    refs = _model_refs(config)
    for embedding in prompts:
        name = embedding.subject
        ref = refs.get(name)
        if ref is None or model_fingerprint(ref, inputs.fingerprint()) != embedding.provenance.data_fingerprint:
            missing.setdefault(f"{config_path} no longer configures it as the study ran it", []).append(name)
            continue
        cache = StudyFolder(study.out_dir).perplexity / f"{embedding.provenance.data_fingerprint}.json"
        outcome = _log_likelihoods(cache, ref, fallback, texts, registry, context)
        if isinstance(outcome, str):
            missing.setdefault(outcome, []).append(name)
        else:
            scores[embedding.label] = spell_score(outcome)
    return SpellScores(scores, tuple(f"{why} ({', '.join(names)})" for why, names in missing.items()))


def _model_refs(config: StudyConfig) -> dict[str, SourceRef]:
    return {ref.name: ref for ref in config.models}


def _log_likelihoods(
    path: Path, ref: SourceRef, fallback: SpellFallback | None, texts: Examples, registry: Any, context: RunContext
) -> np.ndarray | str:
    """Each filled prompt's mean token log-probability (cached at ``path``) from the prompt's own source, else from
    the fallback; or why neither can give them."""
    scorers = [ref.source] + ([fallback.describe()] if fallback else [])
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("inputs") == texts.fingerprint() and cached.get("scorer") in scorers:
            return np.asarray(cached["log_likelihood"], dtype=np.float64)
    outcome = _score(registry.build("model_source", ref.source, ref.options, owner=f"model {ref.name!r}"), texts,
                     context, f"model source {ref.source!r}")  # fmt: skip
    scorer = ref.source
    if isinstance(outcome, str) and fallback is not None:
        try:
            source = fallback.build(ref, registry)
        except FuteError as exc:
            return f"{outcome}; the fallback {fallback.describe()} cannot be built: {exc}"
        scorer = fallback.describe()
        outcome = _score(source, texts, context, f"the fallback {scorer}")
    if isinstance(outcome, str):
        return outcome
    record = {"model": ref.name, "scorer": scorer, "inputs": texts.fingerprint(), "log_likelihood": outcome.tolist()}
    atomic_write_text(path, json.dumps(record, indent=2))
    return outcome


def _score(source: Any, texts: Examples, context: RunContext, what: str) -> np.ndarray | str:
    """One source's log-likelihoods of the filled prompts, or why it cannot give them."""
    if not can_score_prompts(source):
        return f"{what} cannot score prompt text (it has no {CAPABILITY} method)"
    try:
        values = np.asarray(getattr(source, CAPABILITY)(texts, context), dtype=np.float64)
    except NotImplementedError as exc:  # a source that has the method but not here (a server without logprobs)
        return f"{what}: {exc}"
    except FuteError as exc:  # its endpoint is down, say: a baseline's failure must not end the evaluation
        return f"{what} failed: {exc}"
    if values.shape != (len(texts),) or not np.all(np.isfinite(values)):
        return f"{what} returned {values.shape} log-likelihoods for {len(texts)} prompts"
    return values
