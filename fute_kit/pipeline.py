"""Running a study: one job per dataset (DTE) and per model (MTE), then similarities.

Jobs are independent, picklable values so an executor may run them anywhere that sees the
output folder. A job whose embedding is already stored returns at once: a rerun recomputes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import attrs

from fute_kit.atomic import atomic_write_text
from fute_kit.components import MethodResult, RunContext, default_cache_dir
from fute_kit.config import SourceRef, StudyConfig
from fute_kit.embedding import Provenance, Space, TaskEmbedding, canonical_json
from fute_kit.errors import DataError
from fute_kit.examples import Examples, one_answer_warning, unsure_labels_warning
from fute_kit.predictions import PredictionCache, check_predictions
from fute_kit.preflight import check_study
from fute_kit.registry import Registry, get_registry
from fute_kit.similarity import SimilarityMatrix, default_metric_for, similarity_matrix
from fute_kit.store import EmbeddingStore
from fute_kit.study_folder import StudyFolder

log = logging.getLogger("fute_kit")

VERSIONED_PACKAGES = ("fute-kit", "numpy", "torch", "transformers", "peft", "openai")


def package_versions(extra: Sequence[str] = ()) -> dict[str, str]:
    return dict(_installed_versions(tuple(extra)))


@functools.cache
def _installed_versions(extra: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Once per process: importlib.metadata parses each package's METADATA on every call (for 6 packages per job,
    # more CPU than the embedding itself in bench/study_load.py's 500-subject study).
    versions = []
    for name in (*VERSIONED_PACKAGES, *extra):
        try:
            versions.append((name, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions)


def model_fingerprint(ref: SourceRef, unlabeled_fingerprint: str) -> str:
    """A model's identity on one U: its source and options, and the fingerprint of U."""
    payload = canonical_json({"source": ref.source, "options": ref.options, "unlabeled": unlabeled_fingerprint})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


_LOADED: dict[str, Examples] = {}


def load_examples(ref: SourceRef, registry: Registry, context: RunContext) -> Examples:
    """Load a configured source (memoised per process: U is shared by every model job)."""
    key = canonical_json({"source": ref.source, "options": ref.options, "limit": ref.limit})
    if key not in _LOADED:
        source = registry.build("dataset_source", ref.source, ref.options)
        examples = source.load(context)
        _LOADED[key] = attrs.evolve(examples.sample(ref.limit), name=ref.name)
    return _LOADED[key]


@attrs.frozen
class JobOutcome:
    kind: str
    name: str
    status: Literal["computed", "reused", "failed"]
    fingerprint: str = ""
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    error: str = ""


@attrs.frozen
class EmbedJob:
    """Make (or find) one embedding: a DTE of a dataset or an MTE of a model on U."""

    kind: Literal["dataset", "model"]
    ref: SourceRef
    space: Space
    out_dir: str
    unlabeled: SourceRef | None = None
    cache_dir: str = attrs.field(factory=lambda: str(default_cache_dir()))
    show_progress: bool = True

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.ref.name}"

    def __call__(self) -> JobOutcome:
        return self.run(get_registry())

    def context(self) -> RunContext:
        return RunContext(cache_dir=self.cache_dir, show_progress=self.show_progress)

    def run(self, registry: Registry) -> JobOutcome:
        started = time.perf_counter()
        context = self.context()
        store = StudyFolder(self.out_dir).store()
        examples, fingerprint = self.prepare(registry, context, store)
        if examples is None:
            return JobOutcome(self.kind, self.ref.name, "reused", fingerprint)
        embedding = self.embed(examples, fingerprint, registry, context)
        return self.store_result(embedding, store, time.perf_counter() - started)

    def embed(
        self,
        examples: Examples,
        fingerprint: str,
        registry: Registry,
        context: RunContext,
        result: MethodResult | None = None,
        seconds: float = 0.0,
    ) -> TaskEmbedding:
        """This subject's embedding of its prepared examples (``result``: computed already, in a group)."""
        return embed_examples(
            examples,
            self.space,
            self.kind,
            self.ref.name,
            registry,
            context,
            fingerprint=fingerprint,
            source={"source": self.ref.source, **self.ref.options},
            result=result,
            seconds=seconds,
        )

    def store_result(self, embedding: TaskEmbedding, store: EmbeddingStore, seconds: float) -> JobOutcome:
        """Write the embedding to the study's store and log its warnings: the end of every computed job."""
        store.put(embedding)
        warnings = tuple(embedding.provenance.details.get("warnings", ()))
        for warning in warnings:
            log.warning("%s: %s", self.label, warning)
        fingerprint = embedding.provenance.data_fingerprint
        return JobOutcome(self.kind, self.ref.name, "computed", fingerprint, seconds, warnings)

    def prepare(self, registry: Registry, context: RunContext, store: EmbeddingStore) -> tuple[Examples | None, str]:
        """The labelled examples to embed, or None (with the fingerprint) when already stored."""
        if self.kind == "dataset":
            examples = load_examples(self.ref, registry, context).require_nonempty()
            if examples.label_kind == "none":
                raise DataError(f"dataset {self.ref.name!r} has no labels: set the source's label column")
            fingerprint = examples.fingerprint()
            if store.contains(self.space, "dataset", self.ref.name, fingerprint):
                return None, fingerprint
            return examples, fingerprint
        assert self.unlabeled is not None, "model jobs need unlabelled text"
        inputs = load_examples(self.unlabeled, registry, context).require_nonempty().unlabeled()
        fingerprint = model_fingerprint(self.ref, inputs.fingerprint())
        if store.contains(self.space, "model", self.ref.name, fingerprint):
            return None, fingerprint
        return predict_cached(
            self.ref, inputs, fingerprint, StudyFolder(self.out_dir).predictions, registry, context
        ), fingerprint


def predict_cached(
    ref: SourceRef, inputs: Examples, key: str, cache_root: Path, registry: Registry, context: RunContext
) -> Examples:
    """The model's predictions on U, from the prediction cache or by running the model once."""
    cache = PredictionCache(cache_root)
    cached = cache.get(key, inputs)
    if cached is not None:
        return cached
    model = registry.build("model_source", ref.source, ref.options)
    log.info("labelling %d texts with model %r", len(inputs), ref.name)
    predictions = check_predictions(ref.name, model.predict(inputs, context), inputs)
    cache.put(key, inputs, predictions)
    return predictions


def embed_examples(
    examples: Examples,
    space: Space,
    kind: Literal["dataset", "model"],
    subject: str,
    registry: Registry,
    context: RunContext,
    *,
    fingerprint: str | None = None,
    source: dict[str, Any] | None = None,
    result: MethodResult | None = None,
    seconds: float = 0.0,
) -> TaskEmbedding:
    """Run the space's method on labelled examples and wrap the result with its provenance.

    A ``result`` already computed (a group job's member, trained with others) is wrapped as it is.
    """
    examples.require_nonempty()
    spec = registry.get("method", space.method)
    if result is None:
        method = spec.build(space.options)
        started = time.perf_counter()
        result = method.embed(examples, space.surrogate, context)
        seconds = time.perf_counter() - started
    warnings = list(result.warnings)
    if kind == "model" and (label_warning := one_answer_warning(examples) or unsure_labels_warning(examples)):
        warnings.insert(0, label_warning)
    details = {**context.details, **result.details, "warnings": warnings, "labels": examples.summary()}
    provenance = Provenance(
        data_fingerprint=fingerprint or examples.fingerprint(),
        n_examples=len(examples),
        seconds=round(seconds, 3),
        source=source or {},
        details=details,
        versions=package_versions(_plugin_distributions(registry, spec.plugin)),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return TaskEmbedding(result.array, kind, subject, space, provenance)


def _plugin_distributions(registry: Registry, plugin: str) -> tuple[str, ...]:
    info = registry.host.infos.get(plugin)
    return (info.distribution,) if info and info.distribution else ()


@attrs.frozen
class StudyResult:
    outcomes: tuple[JobOutcome, ...]
    similarity: SimilarityMatrix | None
    out_dir: Path

    @property
    def failures(self) -> list[JobOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def build_jobs(
    config: StudyConfig, out_dir: Path, cache_dir: Path | None = None, show_progress: bool = True
) -> list[EmbedJob]:
    common = {"space": config.space, "out_dir": str(out_dir), "show_progress": show_progress}
    if cache_dir is not None:
        common["cache_dir"] = str(cache_dir)
    jobs = [EmbedJob("dataset", ref, **common) for ref in config.datasets]
    jobs += [EmbedJob("model", ref, unlabeled=config.unlabeled, **common) for ref in config.models]
    return jobs


def run_study(
    config: StudyConfig,
    out_dir: str | Path,
    *,
    registry: Registry | None = None,
    cache_dir: str | Path | None = None,
    show_progress: bool = True,
) -> StudyResult:
    """Run every job of a study (skipping stored ones), then write similarity.csv and rankings.json."""
    registry = registry or get_registry()
    # Every data and surrogate problem at once, before any job runs or any file is written.
    context = RunContext(cache_dir=cache_dir or default_cache_dir(), show_progress=False)
    warnings = check_study(config, registry, context)
    out = Path(out_dir)
    folder = StudyFolder(out)
    out.mkdir(parents=True, exist_ok=True)
    handler = _attach_log_file(folder.run_log)
    try:
        for warning in warnings:
            log.warning("study %s: %s", config.path or "(inline)", warning)
        metric, metric_options = config.metric, config.metric_options
        if metric is None:
            metric, metric_options = default_metric_for(config.space.method, registry, config.space.options)
            registry.get("metric", metric)  # fail now, not after hours of work
        jobs = build_jobs(config, out, Path(cache_dir) if cache_dir else None, show_progress)
        log.info("study %s: %d jobs in space %s", config.path or "(inline)", len(jobs), config.space.describe())
        executor = registry.build("executor", config.executor, config.executor_options)
        outcomes: list[JobOutcome | None] = [None] * len(jobs)
        from fute_kit.progress import progress

        results = executor.run(jobs, [job.label for job in jobs])
        for index, outcome, error in progress(results, total=len(jobs), desc="embeddings", enabled=show_progress):
            job = jobs[index]
            if error is not None:
                log.error("%s failed: %s: %s", job.label, type(error).__name__, error)
                outcome = JobOutcome(job.kind, job.ref.name, "failed", error=f"{type(error).__name__}: {error}")
            else:
                log.info("%s %s (%.1fs)", job.label, outcome.status, outcome.seconds)
            outcomes[index] = outcome
        finished = [o for o in outcomes if o is not None]
        store = folder.store()
        embeddings = [
            e
            for o in finished
            if o.status != "failed"
            if (e := store.get(config.space, o.kind, o.name, o.fingerprint)) is not None
        ]
        matrix = None
        if embeddings:
            matrix = similarity_matrix(embeddings, metric, metric_options, registry=registry)
            matrix.write(folder.similarity_csv, folder.rankings_json)
        summary = {
            "config": config.path,
            # what ran, --set overrides included (the file may change, or the study may not come from a file)
            "configuration": config.raw,
            "space": config.space.to_dict(),
            "metric": {"name": metric, "options": metric_options},
            "jobs": [attrs.asdict(o) for o in finished],
        }
        atomic_write_text(folder.study_json, json.dumps(summary, indent=2, default=str))
        result = StudyResult(tuple(finished), matrix, out)
        _notify_finished(registry, out, config, result)
        return result
    finally:
        log.removeHandler(handler)
        handler.close()


def _notify_finished(registry: Registry, out: Path, config: StudyConfig, result: StudyResult) -> None:
    # A failing report must not fail a finished study: its embeddings are already stored.
    known = len(registry.host.failures)
    registry.host.call_each("study_finished", lambda _plugin: {"out_dir": out, "config": config, "result": result})
    for failure in registry.host.failures[known:]:
        log.error("plugin %s failed after the study: %s", failure.plugin, failure.error)


def _attach_log_file(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    return handler
