"""The layout of a study folder (``fute run --out OUT``): the one place that knows where each file lies.

``fute run`` (``fute_kit.pipeline``) writes it; selection, evaluation, the CLI and the report read it::

    OUT/
      embeddings/        the EmbeddingStore (one safetensors + JSON sidecar per embedding)
      predictions/       the PredictionCache: each model's labels on U, keyed by model fingerprint
      perplexity/        each prompt's token log-likelihoods on a sample of U (SPELL), keyed the same way
      similarity.csv     the similarity matrix over the study's embeddings
      rankings.json      for each embedding, the others by decreasing similarity
      study.json         the summary: configuration (its path, and as it ran), space, metric, every job's outcome
      run.log            the log of the runs
      evaluation.json    written by ``fute evaluate``, with baselines.csv (each baseline's score per candidate)
      report.html        written by the report plugin, with figures/*.png

Readers also accept a bare embeddings folder (one that holds ``space.json`` folders, no ``embeddings/``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from fute_kit.errors import DataError
from fute_kit.predictions import PredictionCache
from fute_kit.store import EmbeddingStore


@attrs.frozen
class StudyFolder:
    """Paths of one study folder's files; creating one touches nothing on disk."""

    path: Path = attrs.field(converter=Path)

    @property
    def embeddings(self) -> Path:
        return self.path / "embeddings"

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    @property
    def perplexity(self) -> Path:
        return self.path / "perplexity"

    @property
    def similarity_csv(self) -> Path:
        return self.path / "similarity.csv"

    @property
    def rankings_json(self) -> Path:
        return self.path / "rankings.json"

    @property
    def study_json(self) -> Path:
        return self.path / "study.json"

    @property
    def run_log(self) -> Path:
        return self.path / "run.log"

    @property
    def evaluation_json(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def baselines_csv(self) -> Path:
        return self.path / "baselines.csv"

    @property
    def report_html(self) -> Path:
        return self.path / "report.html"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    def store(self) -> EmbeddingStore:
        """The study's embedding store (where ``fute run`` writes)."""
        return EmbeddingStore(self.embeddings)

    def readable_store(self) -> EmbeddingStore:
        """The embeddings to read: the study's, or the folder itself when it is a bare embeddings folder."""
        return EmbeddingStore(self.embeddings if self.embeddings.is_dir() else self.path)

    def prediction_cache(self) -> PredictionCache:
        return PredictionCache(self.predictions)

    def read_json(self, path: Path) -> dict[str, Any]:
        """One of the folder's JSON files, or {} when it is absent."""
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} is not valid JSON ({exc}); rerun the command that wrote it") from exc

    def summary(self) -> dict[str, Any]:
        """``study.json``, or {} for a bare embeddings folder."""
        return self.read_json(self.study_json)
