"""fute_kit: unified task embeddings for datasets and models in one space (FUTE).

The core is small and never imports torch: methods, model sources and metrics come from plugins.
"""

from __future__ import annotations

from fute_kit.api import compare, embed_dataset, embed_model, load_dataset, load_model, make_space
from fute_kit.components import MethodResult, RunContext
from fute_kit.embedding import Provenance, Space, TaskEmbedding
from fute_kit.errors import (
    ConfigError,
    DataError,
    FuteError,
    OptionsError,
    SpaceMismatchError,
    UnknownComponentError,
)
from fute_kit.examples import Examples
from fute_kit.hookspecs import hookimpl
from fute_kit.options import option
from fute_kit.registry import get_registry
from fute_kit.similarity import SimilarityMatrix
from fute_kit.store import EmbeddingStore

__all__ = [
    "ConfigError",
    "DataError",
    "EmbeddingStore",
    "Examples",
    "FuteError",
    "MethodResult",
    "OptionsError",
    "Provenance",
    "RunContext",
    "SimilarityMatrix",
    "Space",
    "SpaceMismatchError",
    "TaskEmbedding",
    "UnknownComponentError",
    "compare",
    "embed_dataset",
    "embed_model",
    "get_registry",
    "hookimpl",
    "load_dataset",
    "load_model",
    "make_space",
    "option",
]
