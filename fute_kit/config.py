"""Study configuration (TOML), validated in full before any work starts.

Every problem is collected and reported at once, each naming the section, the entry and the key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from fute_kit.embedding import Space
from fute_kit.errors import ConfigError, OptionsError, UnknownComponentError
from fute_kit.options import option_fields, options_of
from fute_kit.prompts import expand_prompts
from fute_kit.registry import Registry, get_registry

SECTIONS = ("space", "unlabeled", "datasets", "models", "similarity", "executor")


@attrs.frozen
class SourceRef:
    """One entry of ``[[datasets]]``, ``[[models]]`` or ``[unlabeled]``: a named, configured source."""

    name: str
    source: str
    options: dict[str, Any] = attrs.field(factory=dict)
    limit: int | None = None  # applied by the pipeline when the source has no ``limit`` of its own


@attrs.frozen
class StudyConfig:
    space: Space
    datasets: tuple[SourceRef, ...] = ()
    models: tuple[SourceRef, ...] = ()
    unlabeled: SourceRef | None = None
    metric: str | None = None
    metric_options: dict[str, Any] = attrs.field(factory=dict)
    executor: str = "local"
    executor_options: dict[str, Any] = attrs.field(factory=dict)
    path: str = ""
    raw: dict[str, Any] = attrs.field(factory=dict)


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"configuration file {path} does not exist"], str(path))
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from exc


def load_config(path: str | Path, registry: Registry | None = None) -> StudyConfig:
    return parse_config(read_toml(path), registry, str(path))


def parse_config(data: Mapping[str, Any], registry: Registry | None = None, path: str = "") -> StudyConfig:
    registry = registry or get_registry()
    problems: list[str] = []

    def component(kind: str, name: Any, options: Mapping[str, Any], where: str, options_where: str = "") -> Any:
        if not isinstance(name, str):
            problems.append(f"{where}: expected a name (string), got {name!r}")
            return None
        try:
            return registry.build(kind, name, options, owner=where)
        except UnknownComponentError as exc:
            problems.append(f"{where}: {exc}")
        except OptionsError as exc:
            problems.extend(f"{options_where or where}: key {key!r}: {message}" for key, message in exc.problems)
        return None

    # -- [space] -------------------------------------------------------------------------
    space_data = data.get("space")
    space: Space | None = None
    if not isinstance(space_data, Mapping):
        problems.append("[space]: missing section (needs surrogate = ..., method = ...)")
    else:
        surrogate = space_data.get("surrogate")
        if not isinstance(surrogate, str) or not surrogate:
            problems.append("[space]: key 'surrogate': missing or not a string (a model id, folder or alias)")
        method_options = space_data.get("options", {})
        if not isinstance(method_options, Mapping):
            problems.append("[space]: key 'options': expected a table")
            method_options = {}
        method_name = space_data.get("method")
        if method_name is None:
            problems.append("[space]: key 'method': missing (for example 'taskemb')")
        method = component("method", method_name, method_options, "[space]", "[space] options")
        if method is not None and isinstance(surrogate, str) and surrogate:
            space = Space(surrogate, registry.get("method", method_name).name, options_of(method))

    # -- sources ------------------------------------------------------------------------
    def source_ref(entry: Any, section: str, kind: str, index: int | None) -> SourceRef | None:
        where = f"[{section}]" if index is None else f"[[{section}]] entry {index + 1}"
        if not isinstance(entry, Mapping):
            problems.append(f"{where}: expected a table")
            return None
        name = entry.get("name", section if index is None else None)
        if index is not None:
            if not isinstance(name, str) or not name:
                problems.append(f"{where}: key 'name': missing or not a string")
            else:
                where = f"{where} ({name!r})"
        source = entry.get("source")
        options = {k: v for k, v in entry.items() if k not in ("name", "source")}
        if source is None:
            problems.append(f"{where}: key 'source': missing (for example 'files' or 'builtin')")
            return None
        limit = None
        fields = (
            {f.name for f in option_fields(registry.get(kind, str(source)).cls)}
            if registry.has(kind, str(source))
            else set()
        )
        if "dataset" in fields and "dataset" not in options and isinstance(name, str):
            # Sources that hold several named datasets (builtin) default to the entry's own name.
            options["dataset"] = name
        if fields and "limit" in options and "limit" not in fields:
            limit = options.pop("limit")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                problems.append(f"{where}: key 'limit': expected a positive integer, got {limit!r}")
                limit = None
        built = component(kind, source, options, where)
        if built is None:
            return None
        return SourceRef(str(name), registry.get(kind, source).name, options_of(built), limit)

    unlabeled = None
    if "unlabeled" in data:
        unlabeled = source_ref(data["unlabeled"], "unlabeled", "dataset_source", None)

    def entries(section: str, kind: str) -> tuple[SourceRef, ...]:
        raw = data.get(section, [])
        if not isinstance(raw, list):
            problems.append(f"[[{section}]]: expected an array of tables ([[{section}]] blocks)")
            return ()
        if section == "models":
            raw = [item for entry in raw if isinstance(entry, Mapping) for item in expand_prompts(dict(entry))]
        refs = [source_ref(entry, section, kind, i) for i, entry in enumerate(raw)]
        seen: set[str] = set()
        for ref in refs:
            if ref is not None:
                if ref.name in seen:
                    problems.append(f"[[{section}]]: name {ref.name!r} is used twice; names must be unique")
                seen.add(ref.name)
        return tuple(r for r in refs if r is not None)

    datasets = entries("datasets", "dataset_source")
    models = entries("models", "model_source")
    if models and unlabeled is None:
        problems.append(
            "[unlabeled]: missing section: model task embeddings need unlabelled text U "
            "(for example source = 'builtin', name = 'unlabeled')"
        )
    if not datasets and not models and not problems:
        problems.append("nothing to embed: add [[datasets]] or [[models]] entries")

    # -- [similarity] and [executor] ---------------------------------------------------------
    metric, metric_options = None, {}
    similarity = data.get("similarity")
    if similarity is not None:
        if not isinstance(similarity, Mapping):
            problems.append("[similarity]: expected a table")
        else:
            metric = similarity.get("metric")
            opts = similarity.get("options", {})
            built = component(
                "metric", metric, opts if isinstance(opts, Mapping) else {}, "[similarity]", "[similarity] options"
            )
            if built is not None:
                metric, metric_options = registry.get("metric", metric).name, options_of(built)
    executor, executor_options = "local", {}
    executor_data = data.get("executor")
    if executor_data is not None:
        if not isinstance(executor_data, Mapping):
            problems.append("[executor]: expected a table")
        else:
            executor = executor_data.get("name", "local")
            opts = {k: v for k, v in executor_data.items() if k != "name"}
            built = component("executor", executor, opts, "[executor]")
            if built is not None:
                executor_options = options_of(built)

    if problems or space is None:
        raise ConfigError(problems or ["[space]: invalid"], path or None)
    return StudyConfig(
        space=space,
        datasets=datasets,
        models=models,
        unlabeled=unlabeled,
        metric=metric,
        metric_options=metric_options,
        executor=executor,
        executor_options=executor_options,
        path=path,
        raw=dict(data),
    )
