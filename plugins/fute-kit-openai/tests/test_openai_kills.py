"""``fute run`` with an openai model, killed with SIGKILL (while labelling U through the local server, while waiting
for a batch) and rerun in a new process; and a whole study with a sentinel API key, searched for in every file.

Real parts: the ``fute`` command (in child processes, to be killed), the local llama.cpp server, the SQLite response
cache. The fault proxy counts what reaches the server; the batch server stands in for OpenAI's Batch API (llama.cpp
has none) and answers from the real server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.server, pytest.mark.slow]

SENTINEL = "sk-fute-sentinel-key-7f3a9c"
TEXTS = [f"Review {i}: {'a wonderful, moving film' if i % 2 else 'dull and far too long'}." for i in range(16)]


def write_study(tmp_path: Path, base_url: str, **options: Any) -> Path:
    """A study of one openai model on 16 texts of U, embedded with textemb on MiniLM (no training: cheap)."""
    pytest.importorskip("fute_kit_hf")
    model = {
        "name": "llm",
        "source": "openai",
        "model": "smollm2-135m-instruct",
        "base_url": base_url,
        "prompt": "Is the sentiment of this movie review positive or negative? Answer with one word.\nReview: {text}",
        "labels": {"positive": ["positive"], "negative": ["negative"]},
        "concurrency": 2,
        "cache_path": str(tmp_path / "cache" / "responses.sqlite"),
        **options,
    }
    lines = [
        '[space]\nsurrogate = "minilm"\nmethod = "textemb"\n',
        f'[unlabeled]\nsource = "inline"\ntexts = {json.dumps(TEXTS)}\n',
        "[[models]]",
        *(f"{key} = {json.dumps(value)}" for key, value in model.items() if key != "labels"),
        "[models.labels]",
        *(f"{key} = {json.dumps(value)}" for key, value in model["labels"].items()),
    ]
    path = tmp_path / "study.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start(config: Path, out: Path, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "FUTE_KIT_CACHE": str(tmp_path / "cache"), "OPENAI_API_KEY": SENTINEL}
    command = [sys.executable, "-m", "fute_kit.cli", "run", str(config), "--out", str(out), "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_when(process: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 300
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == -signal.SIGKILL, f"finished before the kill:\n{output}"


def finish(process: subprocess.Popen[str]) -> str:
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    return output


def cached_requests(tmp_path: Path) -> set[str]:
    """The request bodies (canonical JSON) whose answers the response cache holds."""
    with contextlib.closing(sqlite3.connect(tmp_path / "cache" / "responses.sqlite")) as db:  # closed: no WAL kept
        return {row[0] for row in db.execute("SELECT request FROM responses")}


def canonical(body: bytes) -> str:
    return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_killed_while_labelling_a_rerun_asks_only_for_the_missing_answers(fault_proxy: Any, tmp_path: Path) -> None:
    config, out = write_study(tmp_path, fault_proxy.base_url), tmp_path / "out"
    kill_when(start(config, out, tmp_path), lambda: fault_proxy.forwarded >= 5)
    deadline = time.monotonic() + 120  # the requests in flight at the kill still reach the server: let them end
    while fault_proxy.forwarded < fault_proxy.received and time.monotonic() < deadline:
        time.sleep(0.05)
    answered = cached_requests(tmp_path)
    assert 0 < len(answered) < len(TEXTS), "the kill did not land while labelling"
    assert set(map(canonical, fault_proxy.bodies)) >= answered
    first = len(fault_proxy.bodies)

    output = finish(start(config, out, tmp_path))
    asked = [canonical(body) for body in fault_proxy.bodies[first:]]
    assert not answered & set(asked), "a request whose answer was already received was sent again"
    assert len(asked) == len(set(asked)) == len(TEXTS) - len(answered)
    assert cached_requests(tmp_path) == answered | set(asked)
    jobs = json.loads((out / "study.json").read_text())["jobs"]
    assert [job["status"] for job in jobs] == ["computed"], output
    leftovers = [*tmp_path.rglob("*.tmp"), *tmp_path.rglob("*-wal"), *tmp_path.rglob("*-journal")]
    assert leftovers == [], "the rerun left temporary files (or SQLite's log of the killed run) behind"


def test_batch_resumes_across_a_process_restart(batch_server: Any, tmp_path: Path) -> None:
    config = write_study(tmp_path, batch_server.base_url, batch=True, batch_poll_interval=0.1)
    out = tmp_path / "out"
    kill_when(start(config, out, tmp_path), lambda: batch_server.polls >= 2)  # created, then waiting for it
    assert batch_server.uploads == 1 and batch_server.creates == 1 and len(batch_server.lines) == len(TEXTS)

    batch_server.release.set()
    output = finish(start(config, out, tmp_path))
    assert "resuming" in output
    assert batch_server.uploads == 1 and batch_server.creates == 1, "the restarted run paid for a second batch"
    assert batch_server.online == 0 and len(cached_requests(tmp_path)) == len(TEXTS)


def test_api_key_is_in_no_file_a_study_writes(
    fault_proxy: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from click.testing import CliRunner

    from fute_kit.cli import cli

    config, out = write_study(tmp_path, fault_proxy.base_url), tmp_path / "out"
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL)
    monkeypatch.setenv("FUTE_KIT_CACHE", str(tmp_path / "cache"))
    with caplog.at_level("DEBUG"):  # in this process (cheaper than a child): every log line is seen too
        result = CliRunner().invoke(cli, ["-v", "run", str(config), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert fault_proxy.authorizations and set(fault_proxy.authorizations) == {f"Bearer {SENTINEL}"}  # it was used
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path != config]
    names = {path.name for path in written}
    assert {"study.json", "run.log", "report.html", "responses.sqlite"} <= names, names
    assert any(path.suffix == ".json" and "embeddings" in path.parts for path in written)  # a store sidecar
    leaked = [path for path in written if SENTINEL.encode() in path.read_bytes()]
    assert leaked == [] and SENTINEL not in result.output and SENTINEL not in caplog.text
