"""The plugin manager: built-in defaults plus entry points of the group ``fute_kit``.

Entry points are read with the standard library's ``importlib.metadata`` (the ``entrypoints``
package is in maintenance-only mode and points there itself). Each plugin is loaded inside its own
``try``: one broken plugin is recorded and shown by ``fute plugins``, the rest keep working. Hooks are
called through ``PluginHost.call_each``, one implementation at a time, so a hook that raises is recorded the
same way (as a failure of its plugin at that hook) instead of breaking ``fute`` or the other plugins.

Environment variables:
- ``FUTE_KIT_LOAD_PLUGINS``: comma-separated plugin names to load (built-ins included); empty = none.
- ``FUTE_KIT_DISABLE_PLUGINS``: comma-separated plugin names never to load.
- ``FUTE_KIT_TRACE_PLUGINS=1``: print every hook call (each plugin's answer or failure) on standard error.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import traceback
from collections.abc import Callable
from types import ModuleType
from typing import Any

import attrs
import pluggy

from fute_kit import hookspecs

ENTRY_POINT_GROUP = "fute_kit"

# Plugins that ship inside the core package, loaded like any other (and selectable the same way).
DEFAULT_PLUGINS: dict[str, str] = {
    "inline": "fute_kit.default_plugins.inline",
    "constant": "fute_kit.default_plugins.constant",
    "local": "fute_kit.default_plugins.local_executor",
}


@attrs.frozen
class PluginFailure:
    """A plugin that could not be imported or whose hook raised."""

    plugin: str
    stage: str  # "import", "register" or the name of the hook that raised
    error: str
    traceback: str = ""


@attrs.frozen
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def should_load(name: str) -> bool:
    """Honour ``FUTE_KIT_LOAD_PLUGINS`` and ``FUTE_KIT_DISABLE_PLUGINS``."""
    allowed = _names_from_env("FUTE_KIT_LOAD_PLUGINS")
    disabled = _names_from_env("FUTE_KIT_DISABLE_PLUGINS") or set()
    return (allowed is None or name in allowed) and name not in disabled


@attrs.define
class PluginHost:
    """A pluggy manager plus what happened while loading plugins into it."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo] = attrs.field(factory=dict)
    failures: list[PluginFailure] = attrs.field(factory=list)

    @classmethod
    def empty(cls) -> PluginHost:
        pm = pluggy.PluginManager("fute_kit")
        pm.add_hookspecs(hookspecs)
        if os.environ.get("FUTE_KIT_TRACE_PLUGINS"):
            pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
            pm.enable_tracing()
        return cls(pm)

    @classmethod
    def discover(cls, *, builtins: bool = True, entry_points: bool = True) -> PluginHost:
        host = cls.empty()
        if builtins:
            for name, module in DEFAULT_PLUGINS.items():
                if should_load(name):
                    host.load_module(name, module, builtin=True)
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if not should_load(ep.name) or ep.name in host.infos:
                    continue
                dist = ep.dist.name if ep.dist is not None else None
                version = ep.dist.version if ep.dist is not None else None
                try:
                    plugin = ep.load()
                except Exception as exc:  # isolate: a broken plugin must not break the others
                    host.failures.append(
                        PluginFailure(ep.name, "import", f"{type(exc).__name__}: {exc}", traceback.format_exc())
                    )
                    continue
                host.register(plugin, ep.name, PluginInfo(ep.name, ep.value, dist, version))
        return host

    def load_module(self, name: str, module: str, builtin: bool = False) -> None:
        try:
            plugin = importlib.import_module(module)
        except Exception as exc:
            self.failures.append(PluginFailure(name, "import", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            return
        version = importlib.metadata.version("fute-kit") if builtin else None
        self.register(plugin, name, PluginInfo(name, module, "fute-kit" if builtin else None, version, builtin))

    def register(self, plugin: object, name: str, info: PluginInfo | None = None) -> None:
        try:
            self.pm.register(plugin, name=name)
            self.pm.check_pending()  # catches misspelled hook implementations
        except Exception as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            self.failures.append(PluginFailure(name, "register", f"{type(exc).__name__}: {exc}"))
            return
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__name__
        self.infos[name] = info or PluginInfo(name, module)

    def call_each(
        self, hook: str, arguments: Callable[[str], dict[str, Any]], *, firstresult: bool = False
    ) -> list[Any]:
        """Call each plugin's implementation of ``hook`` on its own, in pluggy's order; the answers that are not None.

        ``arguments(plugin_name)`` gives the keyword arguments of that plugin's call. An implementation that
        raises is recorded in ``failures`` (stage: the hook's name) and the next one runs. ``firstresult``: stop
        at the first answer. Traced like pluggy's own calls when ``FUTE_KIT_TRACE_PLUGINS`` is set.
        """
        trace = self.pm.trace.root.get("hook")  # writes nothing unless tracing is on
        results: list[Any] = []
        trace.root.indent += 1
        try:
            for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):  # pluggy: last registered first
                kwargs = arguments(impl.plugin_name)
                trace(hook, f"[{impl.plugin_name}]", kwargs)
                try:
                    result = impl.function(**{name: kwargs[name] for name in impl.argnames})
                except Exception as exc:  # isolate: recorded like a load error, the other plugins still run
                    error = f"{type(exc).__name__}: {exc}"
                    self.failures.append(PluginFailure(impl.plugin_name, hook, error, traceback.format_exc()))
                    trace("failed", hook, f"[{impl.plugin_name}]", "-->", error)
                    continue
                trace("finish", hook, f"[{impl.plugin_name}]", "-->", result)
                if result is not None:
                    results.append(result)
                    if firstresult:
                        break
        finally:
            trace.root.indent -= 1
        return results

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.infos.pop(name, None)
