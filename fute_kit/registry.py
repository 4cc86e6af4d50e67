"""Named components by kind, collected once per process from the plugins' ``register_*`` hooks."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import attrs

from fute_kit.components import KINDS
from fute_kit.errors import DuplicateComponentError, UnknownComponentError
from fute_kit.options import validate_options
from fute_kit.plugins import PluginFailure, PluginHost

HOOK_BY_KIND: dict[str, str] = {
    "dataset_source": "register_dataset_sources",
    "model_source": "register_model_sources",
    "method": "register_methods",
    "metric": "register_metrics",
    "executor": "register_executors",
}

KIND_LABEL: dict[str, str] = {
    "dataset_source": "dataset source",
    "model_source": "model source",
    "method": "method",
    "metric": "metric",
    "executor": "executor",
}

# First-party components that live in separately installed plugins: asking for one that is not
# installed says which package provides it, instead of "unknown name".
KNOWN_PROVIDERS: dict[str, dict[str, str]] = {
    "dataset_source": {"files": "fute-kit-hf", "hf-datasets": "fute-kit-hf", "builtin": "fute-kit-hf"},
    "model_source": {"hf": "fute-kit-hf", "hf-prompted": "fute-kit-hf", "openai": "fute-kit-openai"},
    "method": {"taskemb": "fute-kit-taskemb", "tupate": "fute-kit-tupate", "textemb": "fute-kit-hf"},
    "metric": {"cosine": "fute-kit-metrics", "cka": "fute-kit-metrics"},
    "executor": {"ray": "fute-kit-ray"},
}


@attrs.frozen
class ComponentSpec:
    """One registered component: its class, names and the plugin that provides it."""

    kind: str
    name: str
    cls: type
    plugin: str
    aliases: tuple[str, ...] = ()
    description: str = ""

    def build(self, options: Mapping[str, Any] | None = None, owner: str | None = None) -> Any:
        """Validate the options and instantiate the component."""
        label = owner or f"{KIND_LABEL[self.kind]} {self.name!r}"
        return validate_options(self.cls, dict(options or {}), label)


class Registry:
    """Components of every kind, with aliases, close-match suggestions and load failures."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.failures: list[PluginFailure] = host.failures  # one list: hook failures after loading show up too
        self._specs: dict[str, dict[str, ComponentSpec]] = {kind: {} for kind in KINDS}
        self._names: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}  # alias -> name
        for kind in KINDS:
            self._collect(kind)

    def _collect(self, kind: str) -> None:
        # Each plugin's implementation is called on its own (PluginHost.call_each) so a failing one is isolated
        # and the registrations are attributed to the right plugin.
        def arguments(plugin: str) -> dict[str, Any]:
            def register(
                cls: type,
                name: str | None = None,
                aliases: tuple[str, ...] | list[str] = (),
                description: str = "",
                **_future: Any,
            ) -> None:
                self._add(kind, cls, name, tuple(aliases), description, plugin)

            return {"register": register}

        self.host.call_each(HOOK_BY_KIND[kind], arguments)

    def _add(
        self, kind: str, cls: type, name: str | None, aliases: tuple[str, ...], description: str, plugin: str
    ) -> None:
        name = name or getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"{cls!r} registered as a {KIND_LABEL[kind]} without a name")
        if not attrs.has(cls):
            raise TypeError(f"{KIND_LABEL[kind]} {name!r} must be an attrs class (its fields are its options)")
        names = self._names[kind]
        for key in (name, *aliases):
            if key in names:
                other = self._specs[kind][names[key]].plugin
                raise DuplicateComponentError(
                    f"{KIND_LABEL[kind]} name {key!r} from plugin {plugin!r} is already registered by "
                    f"plugin {other!r}; rename one or disable a plugin with FUTE_KIT_DISABLE_PLUGINS"
                )
        if not description:
            doc = (cls.__doc__ or "").strip()
            description = doc.splitlines()[0] if doc else ""
        self._specs[kind][name] = ComponentSpec(kind, name, cls, plugin, aliases, description)
        for key in (name, *aliases):
            names[key] = name

    # -- lookup -------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def specs(self, kind: str) -> list[ComponentSpec]:
        return [self._specs[kind][n] for n in self.names(kind)]

    def has(self, kind: str, name: str) -> bool:
        return name in self._names[kind]

    def get(self, kind: str, name: str) -> ComponentSpec:
        if kind not in self._specs:
            raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        canonical = self._names[kind].get(name)
        if canonical is not None:
            return self._specs[kind][canonical]
        raise UnknownComponentError(self.unknown_message(kind, name))

    def unknown_message(self, kind: str, name: str) -> str:
        label = KIND_LABEL[kind]
        provider = KNOWN_PROVIDERS.get(kind, {}).get(name)
        if provider:
            failed = [
                f for f in self.failures if f.plugin.replace("_", "-") in (provider, provider.removeprefix("fute-kit-"))
            ]
            if failed:
                return f"{label} {name!r} comes from {provider}, which failed to load: {failed[0].error}"
            return f"{label} {name!r} is provided by the plugin {provider}: pip install {provider}"
        known = list(self._names[kind])
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        available = ", ".join(self.names(kind)) or "none installed"
        return f"unknown {label} {name!r}{hint} (available: {available})"

    def build(self, kind: str, name: str, options: Mapping[str, Any] | None = None, owner: str | None = None) -> Any:
        return self.get(kind, name).build(options, owner)

    def adapt_model(self, obj: Any) -> Any:
        """An arbitrary object as a model source, through the plugins' ``adapt_model`` hooks."""
        if hasattr(obj, "predict") and attrs.has(type(obj)):
            return obj
        known = len(self.failures)
        answers = self.host.call_each("adapt_model", lambda _plugin: {"obj": obj}, firstresult=True)
        if not answers:
            failed = "".join(f"; plugin {f.plugin}'s adapt_model failed: {f.error}" for f in self.failures[known:])
            raise TypeError(
                f"no plugin can use an object of type {type(obj).__name__} as a model: "
                f"pass a model source, or install a plugin whose adapt_model hook accepts it{failed}"
            )
        adapted = answers[0]
        return adapted


_DEFAULT: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, built from installed plugins on first use."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Registry(PluginHost.discover())
    return _DEFAULT


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (tests); returns the previous one."""
    global _DEFAULT
    previous, _DEFAULT = _DEFAULT, registry
    return previous
