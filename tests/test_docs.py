"""Docs stay true: every hook is documented with its signature and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from fute_kit import hookspecs

ROOT = Path(__file__).parents[1]
HOOKS = [name for name, fn in vars(hookspecs).items() if inspect.isfunction(fn) and hasattr(fn, "fute_kit_spec")]


def test_every_hook_is_documented_with_its_signature() -> None:
    guide = (ROOT / "docs" / "plugin-authors.md").read_text()
    assert len(HOOKS) >= 8
    for name in HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"`{name}({params})`" in guide, f"docs/plugin-authors.md does not document {name}({params})"


def test_every_hook_has_a_test() -> None:
    sources = "\n".join(p.read_text() for p in [*ROOT.glob("tests/*.py"), *ROOT.glob("plugins/*/tests/*.py")])
    for name in HOOKS:
        assert re.search(rf"\bdef {name}\b", sources), f"no test plugin implements {name}"


def test_the_guide_shows_the_example_plugin_code() -> None:
    guide = (ROOT / "docs" / "plugin-authors.md").read_text()
    source = (ROOT / "docs/examples/fute-kit-sklearn-example/src/fute_kit_sklearn_example/__init__.py").read_text()
    body = source[source.index("@attrs.frozen") :].strip()
    assert body in guide, "docs/plugin-authors.md must show the example plugin's code as it is"


def test_readme_study_is_valid() -> None:
    import tomllib

    import pytest

    pytest.importorskip("fute_kit_hf")
    from fute_kit.components import RunContext
    from fute_kit.config import parse_config
    from fute_kit.preflight import check_study
    from fute_kit.registry import get_registry

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```toml", 1)[1].split("```", 1)[0]
    # The README's first study is the copyable file, and it passes the check every `fute run` starts with.
    assert block.strip() == (ROOT / "docs/examples/first-study.toml").read_text().strip()
    config = parse_config(tomllib.loads(block), get_registry())
    assert [m.name for m in config.models] == ["smollm2/review", "smollm2/topic"]
    check_study(config, get_registry(), RunContext(show_progress=False))
