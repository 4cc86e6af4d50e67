"""Plugins use the core only through its declared plugin API, ``fute_kit.plugin``, and each other only through
their top-level packages (method plugins may use ``fute_kit_hf``, the methods' common library, as a whole)."""

from __future__ import annotations

import ast
from pathlib import Path

import fute_kit.plugin

ROOT = Path(__file__).resolve().parents[1]


def packages(pattern: str) -> list[Path]:
    return sorted(p for p in ROOT.glob(pattern) if p.is_dir() and not p.name.endswith(".egg-info"))


PLUGIN_PACKAGES = packages("plugins/*/src/*")
EXAMPLE_PACKAGES = packages("docs/examples/*/src/*")  # a third-party plugin, shown in docs/plugin-authors.md
FIRST_PARTY = {p.name for p in PLUGIN_PACKAGES}
METHOD_PLUGINS = {"fute_kit_taskemb", "fute_kit_tupate"}
COMMON_LIBRARY = "fute_kit_hf"


def imported_modules(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute import in a source file, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
    return found


def uses_common_library(package: Path, top: str) -> bool:
    return package.name in METHOD_PLUGINS and top == COMMON_LIBRARY


def api_problems(package: Path, root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(root)
        for line, module, _ in imported_modules(path):
            top = module.split(".")[0]
            if top == "fute_kit" and module != "fute_kit.plugin":
                problems.append(f"{where}:{line} imports {module}: import it from fute_kit.plugin")
            elif top in FIRST_PARTY - {package.name} and module != top and not uses_common_library(package, top):
                problems.append(f"{where}:{line} reaches into {module}: use {top}'s top-level package")
    return problems


def test_plugins_import_the_core_only_through_the_plugin_api() -> None:
    assert len(PLUGIN_PACKAGES) >= 8 and EXAMPLE_PACKAGES  # the globs found the sources
    problems = [problem for package in [*PLUGIN_PACKAGES, *EXAMPLE_PACKAGES] for problem in api_problems(package)]
    assert not problems, "\n".join(problems)


def test_every_name_plugins_import_is_declared() -> None:
    declared = set(fute_kit.plugin.__all__)
    assert all(hasattr(fute_kit.plugin, name) for name in declared)
    used = {
        name
        for package in [*PLUGIN_PACKAGES, *EXAMPLE_PACKAGES]
        for path in package.rglob("*.py")
        for _, module, names in imported_modules(path)
        if module == "fute_kit.plugin"
        for name in names
    }
    assert used and used <= declared, f"not in fute_kit.plugin.__all__: {sorted(used - declared)}"


def test_the_checker_catches_a_core_import_and_a_reach_into_another_plugin(tmp_path: Path) -> None:
    package = tmp_path / "fute_kit_demo"
    package.mkdir()
    (package / "bad.py").write_text(
        "from fute_kit.pipeline import run_study\nimport fute_kit\n"
        "def f():\n    from fute_kit_hf.finetune import finetune_classifier\n"
        "from fute_kit.plugin import hookimpl\nfrom fute_kit_report import build_report\n"
    )
    problems = [p.split(" ", 1)[1] for p in api_problems(package, tmp_path)]
    assert problems == [
        "imports fute_kit.pipeline: import it from fute_kit.plugin",
        "imports fute_kit: import it from fute_kit.plugin",
        "reaches into fute_kit_hf.finetune: use fute_kit_hf's top-level package",
    ]
