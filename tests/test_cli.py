"""The ``fute`` command, run in-process with click's runner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fute_kit.cli import cli
from fute_kit.registry import Registry


def _toml(data: dict[str, Any]) -> str:
    """A tiny TOML writer for the test configs (strings, numbers, bools, lists, inline tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(v)

    lines = []
    for section, body in data.items():
        for table in body if isinstance(body, list) else [body]:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{k} = {value(v)}" for k, v in table.items()]
    text = "\n".join(lines) + "\n"
    assert tomllib.loads(text) == data
    return text


def test_run_and_rerun(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text(_toml(study_config))
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "4 computed" in result.output and (tmp_path / "out" / "similarity.csv").exists()
    again = runner.invoke(cli, ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"])
    assert "4 reused" in again.output
    listing = runner.invoke(cli, ["store", "ls", "--out", str(tmp_path / "out")])
    assert listing.exit_code == 0 and "good-detector" in listing.output
    as_json = json.loads(runner.invoke(cli, ["store", "ls", "--out", str(tmp_path / "out"), "--json"]).output)
    assert len(as_json) == 4
    matrix = runner.invoke(cli, ["similarity", "--out", str(tmp_path / "out"), "--metric", "dot"])
    assert (
        matrix.exit_code == 0
        and matrix.output.splitlines()[0] == ",dataset:flipped,dataset:reviews,model:good-detector,model:prior"
    )


def test_set_overrides_a_key_for_one_run(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text(_toml(study_config))
    runner = CliRunner()
    out = str(tmp_path / "out")
    first = runner.invoke(cli, ["run", str(config), "--out", out, "--no-progress", "--set", "space.options.buckets=5"])
    assert first.exit_code == 0 and "4 computed" in first.output, first.output
    again = runner.invoke(cli, ["run", str(config), "--out", out, "--no-progress", "--set", "space.options.buckets=5"])
    assert "4 reused" in again.output
    plain = runner.invoke(cli, ["run", str(config), "--out", out, "--no-progress"])  # the file's buckets = 3
    assert "4 computed" in plain.output, plain.output
    bad = runner.invoke(cli, ["run", str(config), "--out", out, "--set", "models.nobody.keyword=x"])
    assert bad.exit_code == 2 and "entries: good-detector, prior" in bad.output, bad.output


def test_old_spellings_of_the_study_folder_work_for_one_release(
    toy_registry: Registry, study_config: dict, tmp_path: Path
) -> None:
    config = tmp_path / "study.toml"
    config.write_text(_toml(study_config))
    out = str(tmp_path / "out")
    runner = CliRunner()
    assert runner.invoke(cli, ["run", str(config), "--out", out, "--no-progress"]).exit_code == 0
    listing = runner.invoke(cli, ["store", "ls", out, "--json"])  # was: store ls STORE_DIR
    assert listing.exit_code == 0 and len(json.loads(listing.stdout)) == 4
    assert "positional OUT is the old spelling of --out" in listing.stderr
    # was: similarity --store DIR [--out FILE.csv]
    new = runner.invoke(cli, ["similarity", "--out", out, "--csv", str(tmp_path / "new.csv")])
    old = runner.invoke(cli, ["similarity", "--store", out, "--out", str(tmp_path / "old.csv")])
    assert new.exit_code == old.exit_code == 0 and "--store is the old spelling" in old.stderr
    assert (tmp_path / "old.csv").read_text() == (tmp_path / "new.csv").read_text()
    for old_flag in ("--out-dir", "--store"):  # was: rank --out-dir DIR | --store DIR
        ranked = runner.invoke(cli, ["rank", "reviews", old_flag, out, "--json"])
        assert ranked.exit_code == 0 and json.loads(ranked.stdout)["target"] == "dataset:reviews"
        assert f"{old_flag} is the old spelling of --out" in ranked.stderr
    twice = runner.invoke(cli, ["rank", "reviews", "--out", out, "--store", out])
    assert twice.exit_code == 2 and "give the study folder once" in twice.output
    for command in (["rank", "reviews"], ["similarity"], ["evaluate", "--truth", str(config)]):
        missing = runner.invoke(cli, command)
        assert missing.exit_code == 2 and "Missing option '--out'" in missing.output
    for command in (["rank"], ["similarity"], ["store", "ls"], ["evaluate"]):
        shown = runner.invoke(cli, [*command, "--help"]).output
        assert "--out" in shown and not any(old in shown for old in ("--out-dir", "--store", "OUT]", "STORE_DIR"))


def test_bad_config_exits_2_with_every_problem(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["datasets"][0]["source"] = "nope"
    study_config["models"][0]["keyword"] = 3
    config = tmp_path / "study.toml"
    config.write_text(_toml(study_config))
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "2 problem(s)" in result.output and "'nope'" in result.output and "key 'keyword'" in result.output
    assert not (tmp_path / "out").exists()  # validation happens before any work


def test_failed_job_exits_1(toy_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["models"][0]["fail"] = True
    config = tmp_path / "study.toml"
    config.write_text(_toml(study_config))
    result = CliRunner().invoke(cli, ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 1 and "FAILED model:good-detector" in result.output
    assert "3 computed" in result.output


def test_embed_one_dataset(toy_registry: Registry, tmp_path: Path) -> None:
    args = [
        "embed",
        "dataset",
        "tiny",
        "--source",
        "inline",
        "--set",
        'texts=["a b", "c", "d e f"]',
        "--set",
        'labels=["x", "y", "x"]',
        "--surrogate",
        "none",
        "--method",
        "label-stats",
        "--option",
        "buckets=2",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "1 computed" in result.output


def test_plugins_json_lists_registrations_and_failures(fute_registry: Any) -> None:
    from toy_plugins import BrokenPlugin, ToyPlugin

    fute_registry(ToyPlugin(), BrokenPlugin())
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    toy = next(r for r in rows.values() if "method" in r["registers"])
    assert toy["registers"]["method"] == ["label-stats"]
    broken = next(r for r in rows.values() if r["errors"])
    assert "this plugin is broken" in broken["errors"][0]["error"]


@pytest.mark.parametrize("command", [["--help"], ["plugins"]])
def test_real_command_is_fast_and_never_imports_torch(command: list[str]) -> None:
    code = (
        "import sys, runpy; sys.argv = ['fute', *sys.argv[1:]];"
        "from fute_kit.cli import cli\n"
        "try:\n    cli()\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'transformers' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout or "inline" in done.stdout


def test_import_never_pulls_heavy_libraries() -> None:
    heavy = "{'torch', 'transformers', 'datasets', 'openai'}"
    code = f"import fute_kit, sys; fute_kit.get_registry(); assert not {heavy} & set(sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
