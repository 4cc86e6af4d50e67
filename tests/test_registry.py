"""The plugin host and the registry: discovery, isolation, lookup errors, selection by environment."""

from __future__ import annotations

from typing import Any

import pytest
from toy_plugins import BrokenPlugin, Dot, ToyPlugin

from fute_kit import hookimpl
from fute_kit.errors import DuplicateComponentError, OptionsError, UnknownComponentError
from fute_kit.plugins import PluginHost
from fute_kit.registry import Registry


def test_lookup_by_name_and_alias(toy_registry: Registry) -> None:
    assert toy_registry.get("metric", "dot").cls is Dot
    assert toy_registry.get("metric", "toy-cosine").cls is Dot
    assert toy_registry.get("method", "label-stats").plugin == "ToyPlugin" or toy_registry.get(
        "method", "label-stats"
    ).plugin.startswith("test-plugin")


def test_unknown_name_suggests_close_matches(toy_registry: Registry) -> None:
    with pytest.raises(UnknownComponentError, match=r"did you mean 'label-stats'") as info:
        toy_registry.get("method", "label-stat")
    assert isinstance(info.value, KeyError)


def test_known_first_party_component_names_its_package(toy_registry: Registry) -> None:
    with pytest.raises(UnknownComponentError, match=r"pip install fute-kit-tupate"):
        toy_registry.get("method", "tupate")


def test_broken_plugin_is_isolated(fute_registry: Any) -> None:
    registry = fute_registry(ToyPlugin(), BrokenPlugin())
    assert registry.has("metric", "dot")
    assert [f.stage for f in registry.failures] == ["register_metrics"]
    assert "this plugin is broken" in registry.failures[0].error


def test_plugin_that_fails_to_import_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    host = PluginHost.empty()
    host.load_module("ghost", "fute_kit_no_such_module")
    assert host.failures[0].plugin == "ghost" and host.failures[0].stage == "import"
    assert Registry(host).failures[0].plugin == "ghost"


def test_duplicate_names_are_refused(fute_registry: Any) -> None:
    class Again:
        @hookimpl
        def register_metrics(self, register: Any) -> None:
            register(Dot)

    registry = fute_registry(ToyPlugin(), Again())
    assert any("already registered" in f.error for f in registry.failures)
    with pytest.raises(DuplicateComponentError):
        registry._add("metric", Dot, None, (), "", "x")


def test_misspelled_hook_is_caught() -> None:
    class Misspelled:
        @hookimpl
        def register_metric(self, register: Any) -> None:  # missing "s"
            pass

    host = PluginHost.empty()
    host.register(Misspelled(), "misspelled")
    assert host.failures and "register_metric" in host.failures[0].error
    assert "misspelled" not in host.infos


def test_environment_selects_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUTE_KIT_DISABLE_PLUGINS", "inline")
    host = PluginHost.discover(entry_points=False)
    assert "inline" not in host.infos and "local" in host.infos
    monkeypatch.delenv("FUTE_KIT_DISABLE_PLUGINS")
    monkeypatch.setenv("FUTE_KIT_LOAD_PLUGINS", "inline")
    host = PluginHost.discover()
    assert list(host.infos) == ["inline"]
    monkeypatch.setenv("FUTE_KIT_LOAD_PLUGINS", "")
    assert PluginHost.discover().infos == {}


def test_options_are_validated_all_at_once(toy_registry: Registry) -> None:
    with pytest.raises(OptionsError) as info:
        toy_registry.build("model_source", "keyword", {"keywrd": "x", "fail": "yes"})
    keys = [key for key, _ in info.value.problems]
    assert keys == ["keywrd", "keyword", "fail"]
    assert "did you mean keyword" in str(info.value)


def test_registry_is_built_once_per_process() -> None:
    from fute_kit.registry import get_registry

    assert get_registry() is get_registry()


def test_entry_point_plugins_are_discovered() -> None:
    # The first-party plugins installed by `make test` register through entry points.
    host = PluginHost.discover()
    registry = Registry(host)
    assert registry.has("executor", "local")
    installed = {info.distribution for info in host.infos.values()}
    assert "fute-kit" in installed
