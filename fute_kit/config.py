"""Study configuration (TOML), validated in full before any work starts.

Every problem is collected and reported at once, each naming the section, the entry and the key.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from fute_kit.embedding import Space
from fute_kit.errors import ConfigError, OptionsError, UnknownComponentError
from fute_kit.options import option_fields, options_of, unknown_key_message
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


def load_config(
    path: str | Path, registry: Registry | None = None, overrides: Mapping[str, Any] | None = None
) -> StudyConfig:
    """The study configuration of a TOML file, with ``overrides`` (see ``override``) applied before validation."""
    return parse_config(override(read_toml(path), overrides or {}), registry, str(path))


def override(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a configuration with dotted keys set: ``space.method``, ``unlabeled.limit``, ``space.options.seed``.

    In ``[[datasets]]`` and ``[[models]]`` the key after the section is an entry's name
    (``models.qwen-sentiment.concurrency``), so one file serves several variants of a study without copies.
    """
    result = copy.deepcopy(dict(data))
    for dotted, value in overrides.items():
        keys = [k.strip() for k in dotted.split(".")]
        if len(keys) < 2 or not all(keys):
            raise ConfigError(
                [f"override {dotted!r}: expected SECTION.KEY (for example space.method or unlabeled.limit)"]
            )
        table = _override_table(result, keys, dotted)
        table[keys[-1]] = value
    return result


def _override_table(data: dict[str, Any], keys: list[str], dotted: str) -> dict[str, Any]:
    """The table that holds ``keys[-1]``, created where missing (a new option), an entry of a list found by name."""
    table, path, i = data, keys[:-1], 0
    while i < len(path):
        value = table.get(path[i])
        if isinstance(value, list):  # [[datasets]] / [[models]]: the next key names the entry
            entries = {e.get("name"): e for e in value if isinstance(e, dict)}
            if i + 1 >= len(path) or path[i + 1] not in entries:
                known = ", ".join(map(str, entries)) or "none"
                raise ConfigError(
                    [f"override {dotted!r}: name an entry of [[{path[i]}]] as in {path[i]}.NAME.KEY (entries: {known})"]
                )
            table, i = entries[path[i + 1]], i + 2
            continue
        if value is None:
            value = table[path[i]] = {}
        if not isinstance(value, dict):
            raise ConfigError([f"override {dotted!r}: {'.'.join(path[: i + 1])} is a value, not a table"])
        table, i = value, i + 1
    return table


SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "space": ("method", "options", "surrogate"),
    "similarity": ("metric", "options"),
}


def _section_label(name: str) -> str:
    return f"[[{name}]]" if name in ("datasets", "models") else f"[{name}]"


def unknown_sections(data: Mapping[str, Any]) -> list[str]:
    """Tables (``[x]``, ``[[x]]``) that are no section: a misspelled section would otherwise be ignored.

    Free top-level keys with plain values (``title = "..."``) stay allowed.
    """
    problems = []
    for key, value in data.items():
        is_table = isinstance(value, Mapping) or (
            isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)
        )
        if key in SECTIONS or not is_table:
            continue
        shown = f"[[{key}]]" if isinstance(value, list) else f"[{key}]"
        close = difflib.get_close_matches(str(key), SECTIONS, n=1, cutoff=0.6)
        hint = f" (did you mean {_section_label(close[0])}?)" if close else ""
        known = ", ".join(_section_label(s) for s in SECTIONS)
        problems.append(f"{shown}: unknown section{hint}; sections: {known}")
    return problems


def _missing_key_hint(table: Mapping[str, Any], key: str, allowed: Sequence[str]) -> str:
    """'; 'surogate' looks like a misspelling of it' when an unknown key of the table is close to ``key``."""
    unknown = [str(k) for k in table if k not in allowed]
    close = difflib.get_close_matches(key, unknown, n=1, cutoff=0.6)
    return f"; {close[0]!r} looks like a misspelling of it" if close else ""


class _ConfigParser:
    """Reads one configuration's sections, collecting every problem instead of stopping at the first."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.problems: list[str] = []

    def component(self, kind: str, name: Any, options: Mapping[str, Any], where: str, options_where: str = "") -> Any:
        if not isinstance(name, str):
            self.problems.append(f"{where}: expected a name (string), got {name!r}")
            return None
        try:
            return self.registry.build(kind, name, options, owner=where)
        except UnknownComponentError as exc:
            self.problems.append(f"{where}: {exc}")
        except OptionsError as exc:
            where = options_where or where
            self.problems.extend(f"{where}: key {key!r}: {message}" for key, message in exc.problems)
        return None

    def known_keys(self, table: Mapping[str, Any], section: str) -> None:
        allowed = SECTION_KEYS[section]
        for key in table:
            if key not in allowed:
                self.problems.append(f"[{section}]: key {key!r}: {unknown_key_message(str(key), allowed)}")

    def table_options(self, table: Mapping[str, Any], where: str) -> Mapping[str, Any]:
        options = table.get("options", {})
        if not isinstance(options, Mapping):
            self.problems.append(f"{where}: key 'options': expected a table")
            return {}
        return options

    def space(self, data: Any) -> Space | None:
        if not isinstance(data, Mapping):
            self.problems.append("[space]: missing section (needs surrogate = ..., method = ...)")
            return None
        self.known_keys(data, "space")
        allowed = SECTION_KEYS["space"]
        surrogate = data.get("surrogate")
        if not isinstance(surrogate, str) or not surrogate:
            hint = _missing_key_hint(data, "surrogate", allowed)
            self.problems.append(
                f"[space]: key 'surrogate': missing or not a string (a model id, folder or alias){hint}"
            )
        method_options = self.table_options(data, "[space]")
        method_name = data.get("method")
        if method_name is None:
            hint = _missing_key_hint(data, "method", allowed)
            self.problems.append(f"[space]: key 'method': missing (for example 'taskemb'){hint}")
        method = self.component("method", method_name, method_options, "[space]", "[space] options")
        if method is None or not isinstance(surrogate, str) or not surrogate:
            return None
        return Space(surrogate, self.registry.get("method", method_name).name, options_of(method))

    def source_ref(self, entry: Any, section: str, kind: str, index: int | None) -> SourceRef | None:
        where = f"[{section}]" if index is None else f"[[{section}]] entry {index + 1}"
        if not isinstance(entry, Mapping):
            self.problems.append(f"{where}: expected a table")
            return None
        name = entry.get("name", section if index is None else None)
        if index is not None:
            if not isinstance(name, str) or not name:
                self.problems.append(f"{where}: key 'name': missing or not a string")
            else:
                where = f"{where} ({name!r})"
        source = entry.get("source")
        options = {k: v for k, v in entry.items() if k not in ("name", "source")}
        if source is None:
            self.problems.append(f"{where}: key 'source': missing (for example 'files' or 'builtin')")
            return None
        fields = (
            {f.name for f in option_fields(self.registry.get(kind, str(source)).cls)}
            if self.registry.has(kind, str(source))
            else set()
        )
        if "dataset" in fields and "dataset" not in options and isinstance(name, str):
            # Sources that hold several named datasets (builtin) default to the entry's own name.
            options["dataset"] = name
        limit = None
        if fields and "limit" in options and "limit" not in fields:
            limit = options.pop("limit")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                self.problems.append(f"{where}: key 'limit': expected a positive integer, got {limit!r}")
                limit = None
        built = self.component(kind, source, options, where)
        if built is None:
            return None
        return SourceRef(str(name), self.registry.get(kind, source).name, options_of(built), limit)

    def entries(self, data: Mapping[str, Any], section: str, kind: str) -> tuple[SourceRef, ...]:
        raw = data.get(section, [])
        if not isinstance(raw, list):
            self.problems.append(f"[[{section}]]: expected an array of tables ([[{section}]] blocks)")
            return ()
        if section == "models":
            raw = [item for entry in raw if isinstance(entry, Mapping) for item in expand_prompts(dict(entry))]
        refs = [self.source_ref(entry, section, kind, i) for i, entry in enumerate(raw)]
        seen: set[str] = set()
        for ref in refs:
            if ref is not None:
                if ref.name in seen:
                    self.problems.append(f"[[{section}]]: name {ref.name!r} is used twice; names must be unique")
                seen.add(ref.name)
        return tuple(r for r in refs if r is not None)

    def similarity(self, data: Any) -> tuple[str | None, dict[str, Any]]:
        if data is None:
            return None, {}
        if not isinstance(data, Mapping):
            self.problems.append("[similarity]: expected a table")
            return None, {}
        self.known_keys(data, "similarity")
        metric = data.get("metric")
        options = self.table_options(data, "[similarity]")
        built = self.component("metric", metric, options, "[similarity]", "[similarity] options")
        if built is None:
            return None, {}
        return self.registry.get("metric", metric).name, options_of(built)

    def executor(self, data: Any) -> tuple[str, dict[str, Any]]:
        if data is None:
            return "local", {}
        if not isinstance(data, Mapping):
            self.problems.append("[executor]: expected a table")
            return "local", {}
        name = data.get("name", "local")
        built = self.component("executor", name, {k: v for k, v in data.items() if k != "name"}, "[executor]")
        return (name, options_of(built)) if built is not None else (name, {})


def parse_config(data: Mapping[str, Any], registry: Registry | None = None, path: str = "") -> StudyConfig:
    """A validated study configuration, or ConfigError listing every problem of every section."""
    parser = _ConfigParser(registry or get_registry())
    parser.problems.extend(unknown_sections(data))
    space = parser.space(data.get("space"))
    unlabeled = None
    if "unlabeled" in data:
        unlabeled = parser.source_ref(data["unlabeled"], "unlabeled", "dataset_source", None)
    datasets = parser.entries(data, "datasets", "dataset_source")
    models = parser.entries(data, "models", "model_source")
    if models and unlabeled is None and "unlabeled" not in data:
        parser.problems.append(
            "[unlabeled]: missing section: model task embeddings need unlabelled text U "
            "(for example source = 'builtin', name = 'unlabeled')"
        )
    if not datasets and not models and not parser.problems:
        parser.problems.append("nothing to embed: add [[datasets]] or [[models]] entries")
    metric, metric_options = parser.similarity(data.get("similarity"))
    executor, executor_options = parser.executor(data.get("executor"))
    if parser.problems or space is None:
        raise ConfigError(parser.problems or ["[space]: invalid"], path or None)
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
