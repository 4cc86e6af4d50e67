"""The plugin API: everything a plugin may use from the core, in one module.

A plugin imports from ``fute_kit.plugin`` only (``tests/test_plugin_api.py`` checks every plugin's sources);
the other core modules may change between releases, this one keeps its names. docs/plugin-authors.md says what
each group is for. Method plugins may also import ``fute_kit_hf``, the methods' common library (surrogates,
training targets, the shared training loop).

Importing this module is cheap (no torch, transformers or openai): plugins import it at load time.
"""

from __future__ import annotations

from fute_kit.accuracy import measure_accuracy
from fute_kit.api import compare, embed_dataset, embed_model, load_dataset, load_model, make_space
from fute_kit.atomic import atomic_folder, atomic_write_bytes, atomic_write_text, remove_orphans
from fute_kit.clitools import STUDY_FOLDER_HELP, parse_settings, settings_option, study_folder_option
from fute_kit.components import (
    DatasetSource,
    Executor,
    Method,
    MethodResult,
    Metric,
    ModelSource,
    RunContext,
    default_cache_dir,
)
from fute_kit.config import StudyConfig, load_config, parse_config
from fute_kit.embedding import Provenance, Space, TaskEmbedding, canonical_json
from fute_kit.errors import ConfigError, DataError, FuteError, OptionsError, SpaceMismatchError, UnknownComponentError
from fute_kit.evaluation import Evaluation, evaluate_study, write_evaluation
from fute_kit.examples import Examples
from fute_kit.hookspecs import hookimpl
from fute_kit.job_groups import grouped_tasks
from fute_kit.local_models import MODELS as LOCAL_MODELS
from fute_kit.local_models import (
    LocalModel,
    LocalModelError,
    fetch_model,
    fetched_path,
    get_local_model,
    model_file,
    parts_present,
)
from fute_kit.options import option, options_of
from fute_kit.pipeline import StudyResult, run_study
from fute_kit.progress import progress, progress_bar, progress_enabled
from fute_kit.prompts import CALIBRATION_HELP, Calibration, calibrate, calibrate_and_record
from fute_kit.registry import get_registry
from fute_kit.selection import Study, open_study
from fute_kit.similarity import SimilarityMatrix
from fute_kit.store import EmbeddingStore
from fute_kit.study_folder import StudyFolder
from fute_kit.truth import read_truth, write_truth

__all__ = [
    "CALIBRATION_HELP",
    "LOCAL_MODELS",
    "STUDY_FOLDER_HELP",
    "Calibration",
    "ConfigError",
    "DataError",
    "DatasetSource",
    "EmbeddingStore",
    "Evaluation",
    "Examples",
    "Executor",
    "FuteError",
    "LocalModel",
    "LocalModelError",
    "Method",
    "MethodResult",
    "Metric",
    "ModelSource",
    "OptionsError",
    "Provenance",
    "RunContext",
    "SimilarityMatrix",
    "Space",
    "SpaceMismatchError",
    "Study",
    "StudyConfig",
    "StudyFolder",
    "StudyResult",
    "TaskEmbedding",
    "UnknownComponentError",
    "atomic_folder",
    "atomic_write_bytes",
    "atomic_write_text",
    "calibrate",
    "calibrate_and_record",
    "canonical_json",
    "compare",
    "default_cache_dir",
    "embed_dataset",
    "embed_model",
    "evaluate_study",
    "fetch_model",
    "fetched_path",
    "get_local_model",
    "get_registry",
    "grouped_tasks",
    "hookimpl",
    "load_config",
    "load_dataset",
    "load_model",
    "make_space",
    "measure_accuracy",
    "model_file",
    "open_study",
    "option",
    "options_of",
    "parse_config",
    "parse_settings",
    "parts_present",
    "progress",
    "progress_bar",
    "progress_enabled",
    "read_truth",
    "remove_orphans",
    "run_study",
    "settings_option",
    "study_folder_option",
    "write_evaluation",
    "write_truth",
]
