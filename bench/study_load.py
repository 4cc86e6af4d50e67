"""Time and peak memory of `fute run`, `fute rank` and the report for studies of many small subjects.

    .venv/bin/python bench/study_load.py [--sizes 50 200 500] [--out bench/RESULTS-load.md] [--keep runs/load]
        [--source OTHER-CHECKOUT]

Each study has N subjects, half inline datasets and half models, embedded on one small inline U with a cheap
method; both the method (``bench-hash``) and the model source (``bench-keyword``) are registered by this script
through the plugin hooks, so the bench measures the toolkit (config, jobs, store, similarity, rankings, report),
not a model. Every command runs in a fresh process (the `fute` CLI, in-process after registering the bench
plugin); its wall time and peak resident memory (``ru_maxrss``) are measured by that process. `fute run` runs with
the report plugin disabled, so the report is measured on its own (`fute report`, the same code `fute run` calls
at the end). A fourth column, "import", is a process that only loads the CLI and plugins: the memory floor.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from fute_kit import Examples, MethodResult, RunContext, hookimpl, option

VOCABULARY = tuple(f"w{i:03d}" for i in range(300))
BUCKETS = 32  # rows of a bench-hash embedding
COMMANDS = ("import", "run", "rank", "report")


@attrs.frozen
class HashedLabelMean:
    """A cheap method: the mean label vector of the texts whose words fall in each of 32 hash buckets."""

    name = "bench-hash"
    default_metric: ClassVar[tuple[str, dict[str, Any]]] = ("cosine", {})

    seed: int = option(0, help="unused; part of the space like a real method's seed")

    def embed(self, examples: Examples, surrogate: str, context: RunContext) -> MethodResult:
        if examples.label_kind == "hard":
            probs = np.eye(examples.num_classes)[examples.labels]
        else:
            probs = np.asarray(examples.labels, dtype=np.float64)
        counts = np.zeros((len(examples), BUCKETS))
        for row, text in enumerate(examples.texts):
            for word in text.split():
                counts[row, zlib.crc32(word.encode()) % BUCKETS] += 1
        return MethodResult(counts.T @ probs / max(len(examples), 1))


@attrs.frozen
class KeywordModel:
    """A cheap model: "pos" with probability ``sureness`` when the text holds one of the keywords."""

    name = "bench-keyword"

    keywords: list[str] = option(help="the words that make a text positive")
    sureness: float = option(0.8, help="probability of the predicted class")

    def predict(self, inputs: Examples, context: RunContext) -> Examples:
        words = set(self.keywords)
        hit = np.array([not words.isdisjoint(text.split()) for text in inputs.texts], dtype=np.float64)
        positive = (1 - self.sureness) + (2 * self.sureness - 1) * hit
        return inputs.with_predictions(np.stack([1 - positive, positive], axis=1), "soft", ("neg", "pos"))


class BenchPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(HashedLabelMean)

    @hookimpl
    def register_model_sources(self, register: Any) -> None:
        register(KeywordModel)


def texts(rng: np.random.Generator, count: int, words: int = 8) -> list[str]:
    return [" ".join(rng.choice(VOCABULARY, size=words)) for _ in range(count)]


def keywords(i: int, count: int = 30) -> list[str]:
    """The i-th task's positive words: 30 of 300, so about half of the 8-word texts hold one."""
    return [VOCABULARY[(i + k) % len(VOCABULARY)] for k in range(count)]


def study_toml(subjects: int, examples: int = 24, u_size: int = 64) -> str:
    """A study of ``subjects`` subjects: half inline datasets (labels from keywords), half keyword models."""
    rng = np.random.default_rng(0)
    lines = [
        f'title = "load: {subjects} subjects"',
        "",
        "[space]",
        'surrogate = "none"',
        'method = "bench-hash"',
        "",
        "[unlabeled]",
        'source = "inline"',
        f"texts = {json.dumps(texts(rng, u_size))}",
    ]
    for i in range(subjects // 2):
        data = texts(rng, examples)
        words = set(keywords(i))
        labels = ["neg" if words.isdisjoint(t.split()) else "pos" for t in data]
        lines += ["", "[[datasets]]", f'name = "d{i:04d}"', 'source = "inline"', f"texts = {json.dumps(data)}"]
        lines += [f"labels = {json.dumps(labels)}"]
    for i in range(subjects - subjects // 2):
        lines += ["", "[[models]]", f'name = "m{i:04d}"', 'source = "bench-keyword"']
        lines += [f"keywords = {json.dumps(keywords(7 * i))}"]
        lines += [f"sureness = {0.7 + 0.25 * (i % 8) / 7:.3f}"]
    return "\n".join(lines) + "\n"


def child(command: str, config: Path, out: Path) -> None:
    """One measured command, in this (fresh) process: prints {"seconds", "cpu_seconds", "peak_rss_mib"} last."""
    from fute_kit.cli import cli
    from fute_kit.plugins import PluginHost
    from fute_kit.registry import Registry, set_registry

    started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime  # the interpreter's start and fute_kit's import are not measured
    host = PluginHost.discover()
    host.register(BenchPlugin(), "bench-load")
    set_registry(Registry(host))
    arguments = {
        "import": ["plugins"],
        "run": ["run", str(config), "--out", str(out), "--no-progress"],
        "rank": ["rank", "dataset:d0000", "--out", str(out), "--top", "10"],
        "report": ["report", "--out", str(out)],
    }[command]
    with open(os.devnull, "w") as devnull:
        stdout, sys.stdout = sys.stdout, devnull
        try:
            cli.main(args=arguments, prog_name="fute", standalone_mode=False)
        finally:
            sys.stdout = stdout
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU time too: on a shared machine the wall time mostly measures the other processes.
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mib": usage.ru_maxrss / 1024}))


def measure(command: str, config: Path, out: Path, source: Path | None = None) -> dict[str, float]:
    env = {**os.environ, "FUTE_KIT_NO_PROGRESS": "1"}
    if source is not None:  # another checkout's fute_kit and report plugin, ahead of the installed ones
        paths = [source, source / "plugins" / "fute-kit-report" / "src"]
        env["PYTHONPATH"] = os.pathsep.join(str(p.resolve()) for p in paths)
    if command == "run":  # the report is measured on its own
        env["FUTE_KIT_DISABLE_PLUGINS"] = ",".join(filter(None, [env.get("FUTE_KIT_DISABLE_PLUGINS"), "report"]))
    done = subprocess.run(
        [sys.executable, __file__, "--child", command, "--config", str(config), "--study", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"`fute {command}` failed on {out} (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(sizes: list[int], root: Path, source: Path | None = None) -> list[dict[str, Any]]:
    rows = []
    for size in sizes:
        config = root / f"load-{size}.toml"
        config.write_text(study_toml(size), encoding="utf-8")
        out = root / f"load-{size}"
        shutil.rmtree(out, ignore_errors=True)
        row: dict[str, Any] = {"subjects": size}
        for command in COMMANDS:
            row[command] = measure(command, config, out, source)
            print(f"{size} subjects, {command}: {row[command]}", flush=True)
        report = out / "report.html"
        row["report_kib"] = report.stat().st_size / 1024 if report.exists() else float("nan")
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], load: tuple[float, float], command: str) -> str:
    lines = [
        "# Study load: many small subjects",
        "",
        f"Command: `{command}` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.1f} before, {load[1]:.1f} after)",
        "",
        "Half inline datasets of 24 texts, half keyword models, on an inline U of 64 texts; method `bench-hash`"
        " (32x2 embeddings, cosine). Each command in a fresh process: wall time / CPU time (s) / peak RSS (MiB);"
        " on a shared machine the CPU time is the steadier figure.",
        "",
        "| subjects | import (floor) | `fute run` (no report) | `fute rank` | `fute report` | report.html |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            f"{row[c]['seconds']:.1f} / {row[c]['cpu_seconds']:.1f} s / {row[c]['peak_rss_mib']:.0f} MiB"
            for c in COMMANDS
        ]
        lines.append(f"| {row['subjects']} | " + " | ".join(cells) + f" | {row['report_kib']:.0f} KiB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-load.md"))
    parser.add_argument("--keep", type=Path, help="write the studies here (kept) instead of a temporary folder")
    parser.add_argument(
        "--source",
        type=Path,
        help="measure the fute_kit and report plugin of another checkout (e.g. `git archive` of an older commit)",
    )
    parser.add_argument("--child", choices=COMMANDS, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--study", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.config, args.study)
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="fute-bench-load-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        before = os.getloadavg()[0]
        rows = bench(args.sizes, root, args.source)
        command = " ".join([".venv/bin/python bench/study_load.py", *sys.argv[1:]])
        text = markdown(rows, (before, os.getloadavg()[0]), command)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
