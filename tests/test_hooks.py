"""Each hook exercised by a throwaway plugin: sources, executors, commands, adapters, study_finished."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np
import pytest
from click.testing import CliRunner
from toy_plugins import TEXTS, ToyPlugin

import fute_kit
from fute_kit import Examples, RunContext, hookimpl
from fute_kit.config import parse_config
from fute_kit.pipeline import run_study


@attrs.frozen
class Letters:
    """A dataset source: texts labelled by their first letter's case."""

    name = "letters"

    count: int = fute_kit.option(6)

    def load(self, context: RunContext) -> Examples:
        texts = [chr(65 + i) + "x" * i if i % 2 else chr(97 + i) * (i + 1) for i in range(self.count)]
        return Examples.from_hard_labels(texts, ["upper" if t[0].isupper() else "lower" for t in texts])


@attrs.frozen
class Backwards:
    """An executor that runs jobs last to first (results must still land in order)."""

    name = "backwards"

    def run(self, jobs: Sequence[Callable[[], Any]], names: Sequence[str]) -> Iterator[tuple[int, Any, Any]]:
        for index in reversed(range(len(jobs))):
            yield index, jobs[index](), None


@attrs.frozen
class Echo:
    """A model that answers with the label of a wrapped callable."""

    fn: Callable[[str], float]

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        p = np.array([self.fn(t) for t in inputs.texts])
        return inputs.with_predictions(np.stack([1 - p, p], axis=1), "soft", ("no", "yes"))


class HookPlugin:
    def __init__(self) -> None:
        self.finished: list[Path] = []

    @hookimpl
    def register_dataset_sources(self, register: Any) -> None:
        register(Letters)

    @hookimpl
    def register_executors(self, register: Any) -> None:
        register(Backwards)

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command(name="hello")
        def hello() -> None:
            click.echo("hello from a plugin")

    @hookimpl
    def adapt_model(self, obj: Any) -> Any:
        return Echo(obj) if callable(obj) else None

    @hookimpl
    def study_finished(self, out_dir: Path, config: Any, result: Any) -> None:
        self.finished.append(out_dir)
        raise RuntimeError("a failing report must not fail the study")

    @hookimpl
    def report_setup(self, report: Any) -> None:
        report("alias letters", "built in, no download")


@pytest.fixture
def hook_plugin(fute_registry: Any) -> HookPlugin:
    plugin = HookPlugin()
    fute_registry(ToyPlugin(), plugin)
    return plugin


def test_dataset_source_executor_and_study_finished(hook_plugin: HookPlugin, tmp_path: Path) -> None:
    config = parse_config(
        {
            "space": {"surrogate": "none", "method": "label-stats"},
            "datasets": [{"name": "a", "source": "letters"}, {"name": "b", "source": "letters", "count": 9}],
            "executor": {"name": "backwards"},
        }
    )
    result = run_study(config, tmp_path, show_progress=False)
    assert [o.name for o in result.outcomes] == ["a", "b"] and result.similarity is not None
    assert hook_plugin.finished == [tmp_path]
    assert "failed after the study" in (tmp_path / "run.log").read_text()


def test_register_commands_adds_a_subcommand(hook_plugin: HookPlugin) -> None:
    from fute_kit.cli import cli

    result = CliRunner().invoke(cli, ["hello"])
    assert result.output.strip() == "hello from a plugin"


def test_report_setup_is_shown_by_fute_plugins(hook_plugin: HookPlugin) -> None:
    from fute_kit.cli import cli

    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0 and "  alias letters: built in, no download" in result.output
    listed = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert {"alias letters": "built in, no download"} in [row.get("setup") for row in listed]


def test_adapt_model_turns_an_object_into_a_model(hook_plugin: HookPlugin) -> None:
    space = fute_kit.make_space("none", "label-stats", buckets=2)
    emb = fute_kit.embed_model(lambda text: float("good" in text), Examples(texts=TEXTS), space, "lambda")
    assert emb.kind == "model" and emb.subject == "lambda"


def test_unadaptable_object_is_named(hook_plugin: HookPlugin) -> None:
    with pytest.raises(TypeError, match="object of type int"):
        fute_kit.embed_model(3, Examples(texts=TEXTS), fute_kit.make_space("none", "label-stats"))


class RaisingHooks:
    """A plugin whose command, adapter and after-study hooks all raise (a plugin author's bug)."""

    __name__ = "raising-hooks"  # its plugin name in the registry

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("broken command hook")

    @hookimpl(tryfirst=True)  # asked before the working adapter, which must still be reached
    def adapt_model(self, obj: Any) -> Any:
        raise RuntimeError("broken adapter")

    @hookimpl
    def study_finished(self, out_dir: Path, config: Any, result: Any) -> None:
        raise RuntimeError("broken report")

    @hookimpl
    def report_setup(self, report: Any) -> None:
        raise RuntimeError("broken setup report")


@pytest.fixture
def raising_hooks(fute_registry: Any) -> Any:
    return fute_registry(ToyPlugin(), HookPlugin(), RaisingHooks())


def test_raising_hooks_are_isolated_and_reported(raising_hooks: Any, tmp_path: Path) -> None:
    from fute_kit.cli import cli

    helped = CliRunner().invoke(cli, ["--help"])
    assert helped.exit_code == 0, helped.output
    assert "hello" in helped.output and "plugins" in helped.output  # the other plugins' commands are kept
    emb = fute_kit.embed_model(
        lambda text: float("good" in text), Examples(texts=TEXTS), fute_kit.make_space("none", "label-stats")
    )
    assert emb.kind == "model"  # the working adapter answered after the broken one
    config = parse_config(
        {"space": {"surrogate": "none", "method": "label-stats"}, "datasets": [{"name": "a", "source": "letters"}]}
    )
    assert run_study(config, tmp_path, show_progress=False).similarity is not None
    assert (
        "plugin raising-hooks failed after the study: RuntimeError: broken report" in (tmp_path / "run.log").read_text()
    )
    listed = CliRunner().invoke(cli, ["plugins"])
    assert listed.exit_code == 0, listed.output
    for stage, error in (
        ("report_setup", "broken setup report"),
        ("register_commands", "broken command hook"),
        ("adapt_model", "broken adapter"),
        ("study_finished", "broken report"),
    ):
        assert f"FAILED ({stage}): RuntimeError: {error}" in listed.output
    stages = {f.stage for f in raising_hooks.failures}
    assert stages == {"register_commands", "adapt_model", "study_finished", "report_setup"}


def test_a_failing_adapter_is_named_when_no_adapter_answers(fute_registry: Any) -> None:
    fute_registry(ToyPlugin(), RaisingHooks())
    with pytest.raises(TypeError, match="raising-hooks's adapt_model failed: RuntimeError: broken adapter"):
        fute_kit.embed_model(3, Examples(texts=TEXTS), fute_kit.make_space("none", "label-stats"))


def test_trace_shows_every_hook_call(
    fute_registry: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fute_kit.cli import cli

    monkeypatch.setenv("FUTE_KIT_TRACE_PLUGINS", "1")
    fute_registry(ToyPlugin(), HookPlugin(), RaisingHooks())
    helped = CliRunner().invoke(cli, ["--help"])  # the runner captures its own standard error
    fute_kit.embed_model(lambda text: 0.5, Examples(texts=TEXTS), fute_kit.make_space("none", "label-stats"))
    run_study(
        parse_config(
            {"space": {"surrogate": "none", "method": "label-stats"}, "datasets": [{"name": "a", "source": "letters"}]}
        ),
        tmp_path,
        show_progress=False,
    )
    trace = capsys.readouterr().err + helped.stderr
    for hook in (
        "register_dataset_sources",
        "register_model_sources",
        "register_methods",
        "register_metrics",
        "register_executors",
    ):
        assert f"finish {hook} [" in trace, hook
    assert "finish register_commands [test-plugin-" in trace and "failed register_commands [raising-hooks]" in trace
    assert "failed adapt_model [raising-hooks]" in trace and "finish adapt_model [test-plugin-" in trace
    assert "failed study_finished [test-plugin-" in trace and "failed study_finished [raising-hooks]" in trace
