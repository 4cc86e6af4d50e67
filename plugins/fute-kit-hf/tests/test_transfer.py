"""``fute transfer``: a 3-task zoo end to end, resumption after SIGKILL, the truth CSV, the source-ranking study.

A tiny random BERT and tiny samples of three builtin sets keep every fine-tuning well under a second; the
numbers are not meaningful transfer gains, the bookkeeping is what is tested.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fute_kit.errors import DataError, FuteError
from fute_kit_hf import transfer
from fute_kit_hf.transfer import TransferRecipe, builtin_datasets, measure_transfer

ZOO = ["rt-sentiment", "bbc-topic", "rt-subjectivity"]
TINY = ["--source-size", "24", "--target-size", "16", "--test-size", "20", "--source-epochs", "1"]
TINY += ["--target-epochs", "1", "--batch-size", "8", "--max-length", "24", "--seeds", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def _keep_torch_threads() -> Any:
    """``--threads 1`` (fast on a busy machine) sets a process-wide torch setting: give it back afterwards."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _read_truth(path: Path) -> Any:
    """The truth as ``fute evaluate --truth`` reads it."""
    from fute_kit.truth import read_truth

    return read_truth(path)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _transfer(out: Path, base: str, *extra: str) -> Any:
    from fute_kit.cli import cli

    return CliRunner().invoke(cli, ["transfer", *ZOO, "--out", str(out), "--base", base, *TINY, *extra])


def test_three_task_zoo_end_to_end(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    result = _transfer(tmp_path / "out", base)
    assert result.exit_code == 0, result.output
    truth = _read_truth(tmp_path / "out" / "truth.csv")
    assert {t: sorted(c) for t, c in truth.items()} == {t: sorted(set(ZOO) - {t}) for t in ZOO}
    rows = _csv(tmp_path / "out" / "truth.csv")
    assert list(rows[0]) == list(transfer.TRUTH_COLUMNS) and {r["n"] for r in rows} == {"1"}
    assert {r["source_examples"] for r in rows} == {"24"}  # --source-size: the size baseline's truth
    runs = _csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 6
    for run in runs:  # the truth's score is the gain of the runs it came from
        gain = float(run["score_after"]) - float(run["score_alone"])
        assert truth[run["target"]][run["source"]] == pytest.approx(gain, abs=1e-5)
    cache = tmp_path / "out" / "runs"
    assert len(list((cache / "scores").glob("*.json"))) == 3 + 6  # baselines + transfers: scores only
    assert len([p for p in (cache / "sources").iterdir() if (p / "config.json").is_file()]) == 3
    models = {r["candidate"] for r in _csv(tmp_path / "out" / "truth-models.csv")}
    assert models == {f"ft-{name}" for name in ZOO}

    stamps = {p: p.stat().st_mtime_ns for p in (cache / "scores").glob("*.json")}
    again = _transfer(tmp_path / "out", base)
    assert again.exit_code == 0, again.output
    assert again.output.count("reused") == 9 + 3 and {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_rows_of_several_calls_accumulate(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    assert _transfer(tmp_path / "out", base, "--targets", "bbc-topic").exit_code == 0
    assert set(_read_truth(tmp_path / "out" / "truth.csv")) == {"bbc-topic"}
    assert _transfer(tmp_path / "out", base, "--targets", "rt-sentiment,rt-subjectivity").exit_code == 0
    assert set(_read_truth(tmp_path / "out" / "truth.csv")) == set(ZOO)
    changed = _transfer(tmp_path / "out", base, "--targets", "bbc-topic", "--lr", "1e-3")
    assert changed.exit_code == 2 and "another recipe" in changed.output


def test_resumes_after_sigkill_without_repeating_a_run(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    out = tmp_path / "out"
    scores = out / "runs" / "scores"
    command = [sys.executable, "-m", "fute_kit.cli", "transfer", *ZOO, "--out", str(out), "--base", base, *TINY]
    command += ["--seeds", "2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(scores.glob("*.json"))) < 4 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stdout.read().decode() if process.stdout else ""
    finished = {p: p.stat().st_mtime_ns for p in scores.glob("*.json")}
    assert 4 <= len(finished) < 18
    for path in finished:  # atomic writes: whatever exists is whole
        assert "eval_accuracy" in json.loads(path.read_text())
    if (out / "truth.csv").exists():
        _read_truth(out / "truth.csv")

    result = _transfer(out, base, "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    assert len(list(scores.glob("*.json"))) == 18
    target_lines = [line for line in result.output.splitlines() if " seed " in line]
    assert len(target_lines) == 18 and sum("reused" in line for line in target_lines) == len(finished)
    assert not [p for p in (out / "runs" / "sources").iterdir() if p.name.endswith(".tmp")]
    assert len(_csv(out / "runs.csv")) == 12 and {r["n"] for r in _csv(out / "truth.csv")} == {"2"}


def _finetunings(cache: Path) -> int:
    """Fine-tunings a call left in the run cache: score files of target runs and source checkpoints."""
    sources = [p for p in (cache / "sources").iterdir() if (p / "config.json").is_file()]
    return len(list((cache / "scores").glob("*.json"))) + len(sources)


def test_resumes_from_runs_csv_without_the_run_cache(tiny_model_dir: Any, tmp_path: Path) -> None:
    """A fresh machine with only the committed runs.csv and transfer.json: nothing is fine-tuned again."""
    import shutil

    base = tiny_model_dir("bert")
    first = tmp_path / "first"
    assert _transfer(first, base).exit_code == 0
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("runs.csv", "transfer.json"):
        shutil.copy(first / name, moved / name)

    result = _transfer(moved, base)
    assert result.exit_code == 0, result.output
    assert _finetunings(moved / "runs") == 0
    assert result.output.count(transfer.REUSED_ROW) == 9 + 3  # every target run and source counted done
    assert "[9/9 target runs, 3/3 sources]" in result.output
    for name in ("truth.csv", "truth-models.csv", "runs.csv"):  # rebuilt from the rows, byte for byte
        assert (moved / name).read_bytes() == (first / name).read_bytes(), name

    # A truth.csv from before the source_examples column is rebuilt from runs.csv, nothing trained.
    legacy = [",".join(line.split(",")[:-1]) for line in (first / "truth.csv").read_text().splitlines()]
    (moved / "truth.csv").write_text("\n".join(legacy) + "\n")
    assert _transfer(moved, base).exit_code == 0 and _finetunings(moved / "runs") == 0
    assert (moved / "truth.csv").read_bytes() == (first / "truth.csv").read_bytes()

    # One row missing: only its source checkpoint and its transfer run are trained (the baseline is recorded).
    rows = (first / "runs.csv").read_text().splitlines()
    dropped = next(r for r in rows if r.startswith("rt-sentiment,bbc-topic,"))
    (moved / "runs.csv").write_text("\n".join(r for r in rows if r != dropped) + "\n")
    (moved / "truth.csv").unlink()
    shutil.rmtree(moved / "runs")
    again = _transfer(moved, base)
    assert again.exit_code == 0, again.output
    assert len(list((moved / "runs" / "scores").glob("*.json"))) == 1 and _finetunings(moved / "runs") == 2
    assert again.output.count(transfer.REUSED_ROW) == 8 + 2
    for name in ("runs.csv", "truth.csv"):  # the same run retrained gives the same scores (its row comes last)
        assert sorted((moved / name).read_text().splitlines()) == sorted((first / name).read_text().splitlines())


def test_refusals_come_before_any_finetuning(tiny_model_dir: Any, tmp_path: Path) -> None:
    base = tiny_model_dir("bert")
    with pytest.raises(DataError, match="no labelled builtin dataset named no-such-set"):
        builtin_datasets(["rt-sentiment", "no-such-set"])
    datasets = builtin_datasets(ZOO)
    with pytest.raises(FuteError, match="--targets nope not among"):
        measure_transfer(datasets, tmp_path / "a", TransferRecipe(base=base), targets=["nope"])
    with pytest.raises(FuteError, match="at least two datasets"):
        measure_transfer(datasets[:1], tmp_path / "b", TransferRecipe(base=base))
    with pytest.raises(FuteError, match="does not exist"):
        measure_transfer(datasets, tmp_path / "c", TransferRecipe(base=str(tmp_path / "missing" / "model")))
    with pytest.raises(DataError, match="800 training examples, fewer than the target size 5000"):
        measure_transfer(datasets, tmp_path / "e", TransferRecipe(base=base, target_size=5000))
    with pytest.raises(FuteError, match="target_size=1"):
        TransferRecipe(target_size=1)
    assert not any((tmp_path / x / "runs").exists() for x in "ace")
    from fute_kit.cli import cli

    both = CliRunner().invoke(cli, ["transfer", "rt-sentiment", "--zoo", "--out", str(tmp_path / "d")])
    assert both.exit_code == 2 and "one way" in both.output


def test_source_study_loads_as_a_study(tiny_model_dir: Any, tmp_path: Path) -> None:
    from fute_kit.config import load_config

    base = tiny_model_dir("bert")
    study = tmp_path / "study.toml"
    result = _transfer(tmp_path / "out", base, "--write-study", str(study))
    assert result.exit_code == 0, result.output
    config = load_config(study)
    assert [d.name for d in config.datasets] == ZOO
    assert [m.name for m in config.models] == [f"ft-{name}" for name in ZOO]
    for model in config.models:
        assert (Path(model.options["path"]) / "config.json").is_file()
    # the measurement starts from the very checkpoints the study embeds
    measured = _transfer(tmp_path / "out", base).output.splitlines()
    assert sum("source checkpoint" in line and "reused" in line for line in measured) == 3


def test_datasets_of_a_study(tiny_model_dir: Any, tmp_path: Path) -> None:
    from fute_kit.cli import cli

    study = tmp_path / "study.toml"
    entries = "".join(f'\n[[datasets]]\nname = "{name}"\nsource = "builtin"\n' for name in ZOO[:2])
    study.write_text('[space]\nsurrogate = "minilm"\nmethod = "textemb"\n' + entries)
    args = ["transfer", "--study", str(study), "--out", str(tmp_path / "out"), "--base", tiny_model_dir("bert")]
    result = CliRunner().invoke(cli, [*args, *TINY])
    assert result.exit_code == 0, result.output
    truth = _read_truth(tmp_path / "out" / "truth.csv")
    assert {t: set(c) for t, c in truth.items()} == {ZOO[0]: {ZOO[1]}, ZOO[1]: {ZOO[0]}}


def test_zoo_takes_the_groups_in_turn() -> None:
    from fute_kit_hf.datasets import builtin_zoo

    zoo = builtin_zoo()
    names = transfer.zoo_names()
    assert sorted(names) == sorted(zoo) and len(set(names)) == len(names)
    groups = {task.group for task in zoo.values()}
    assert {zoo[name].group for name in names[: len(groups)]} == groups  # the first targets cover every group


def test_time_left_counts_timed_kinds_and_names_the_untimed() -> None:
    from fute_kit_hf.transfer import _Clock

    lines: list[str] = []
    clock = _Clock(lines.append, total_sources=2, total_targets=4)
    clock.finished("target", 60.0, "t seed 0 alone")
    assert lines[-1].endswith("time left: unknown until a run of each kind is timed")
    clock.finished("source", None, "source checkpoint a")  # on disk: no time to learn from
    clock.finished("target", 120.0, "t seed 0 after a")
    assert lines[-1].endswith("about 3 min 0 s left (plus 1 source run not timed yet: none so far needed training)")
    clock.finished("source", 30.0, "source checkpoint b")
    assert lines[-1].endswith("about 3 min 0 s left")
    clock.finished("target", 90.0, "t seed 0 after b")
    clock.finished("target", 90.0, "t seed 1 alone")
    assert lines[-1].endswith("; done")
