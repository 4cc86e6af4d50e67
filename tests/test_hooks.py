"""Each hook exercised by a throwaway plugin: sources, executors, commands, adapters, study_finished."""

from __future__ import annotations

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


def test_adapt_model_turns_an_object_into_a_model(hook_plugin: HookPlugin) -> None:
    space = fute_kit.make_space("none", "label-stats", buckets=2)
    emb = fute_kit.embed_model(lambda text: float("good" in text), Examples(texts=TEXTS), space, "lambda")
    assert emb.kind == "model" and emb.subject == "lambda"


def test_unadaptable_object_is_named(hook_plugin: HookPlugin) -> None:
    with pytest.raises(TypeError, match="object of type int"):
        fute_kit.embed_model(3, Examples(texts=TEXTS), fute_kit.make_space("none", "label-stats"))
