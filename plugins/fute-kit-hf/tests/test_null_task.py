"""The null-task cache: prior rounding, keys, and files that survive corruption, kills and concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fute_kit.components import RunContext
from fute_kit_hf.null_task import NullTaskCache, round_prior, shared_null, targets_digest, tokenized_digest
from fute_kit_hf.targets import Targets


def _prior(values: list[float], loss: str = "soft-ce", n: int = 6) -> Targets:
    prior = torch.tensor(values, dtype=torch.float32)
    return Targets(prior.expand(n, -1).clone(), loss, len(values))  # type: ignore[arg-type]


def test_round_prior_puts_class_priors_on_the_grid() -> None:
    rounded = round_prior(_prior([0.47, 0.53]), 0.05)
    assert torch.allclose(rounded.values, torch.tensor([0.45, 0.55]).expand(6, -1))
    assert rounded.loss == "soft-ce" and rounded.values.dtype == torch.float32
    three = round_prior(_prior([0.32, 0.33, 0.35]), 0.1).values[0]
    assert torch.isclose(three.sum(), torch.tensor(1.0)) and torch.allclose(three, torch.tensor([0.3, 0.3, 0.4]))
    exact = _prior([0.47, 0.53])
    assert round_prior(exact, 0.0) is exact  # step 0: the exact prior
    assert torch.allclose(round_prior(_prior([0.2, 0.3, 0.5]), 0.3).values[0], torch.tensor([0.25, 0.25, 0.5]))
    many = _prior([1 / 40] * 40)
    assert round_prior(many, 0.05) is many  # half the classes would round to 0: kept exact
    rare = _prior([0.02, 0.98])
    assert round_prior(rare, 0.05) is rare
    bce = round_prior(_prior([0.12, 0.71], loss="bce"), 0.1).values[0]
    assert torch.allclose(bce, torch.tensor([0.1, 0.7]))  # independent labels: no renormalising
    regression = Targets(torch.zeros(6), "mse", 1)
    assert round_prior(regression, 0.05) is regression


def test_digests_follow_the_bytes() -> None:
    assert targets_digest(_prior([0.5, 0.5])) == targets_digest(_prior([0.5, 0.5]))
    assert targets_digest(_prior([0.5, 0.5])) != targets_digest(_prior([0.45, 0.55]))
    assert targets_digest(_prior([0.5, 0.5])) != targets_digest(_prior([0.5, 0.5], n=7))
    from fute_kit_hf.surrogate import Tokenized

    def tokens(rows: tuple[tuple[int, ...], ...]) -> Tokenized:
        return Tokenized(rows, None, np.zeros(len(rows), dtype=bool), 16)

    same = tokenized_digest(tokens(((1, 2), (3,))))
    assert same == tokenized_digest(tokens(((1, 2), (3,))))
    assert same != tokenized_digest(tokens(((1,), (2, 3))))  # same ids, other split into texts
    assert same != tokenized_digest(tokens(((3,), (1, 2))))  # other order


def test_shared_null_computes_once_then_reads(tmp_path: Path) -> None:
    context = RunContext(cache_dir=tmp_path, show_progress=False)
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return np.arange(6, dtype=np.float64).reshape(2, 3) / 7

    first, details = shared_null(context, "m", "k1", compute, (2, 3))
    assert details == {"null_task_reused": False, "null_task_key": "k1"}
    again, details = shared_null(context, "m", "k1", compute, (2, 3))
    assert details["null_task_reused"] is True and len(calls) == 1
    assert again.dtype == first.dtype and np.array_equal(again, first)  # bit-identical
    shared_null(context, "m", "k2", compute)
    assert len(calls) == 2
    assert sorted(p.name for p in (tmp_path / "null-task" / "m").iterdir()) == ["k1.npz", "k2.npz"]


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty", "other-shape", "other-key"])
def test_a_damaged_file_is_ignored_and_rewritten(tmp_path: Path, damage: str) -> None:
    context = RunContext(cache_dir=tmp_path, show_progress=False)
    array = np.linspace(0, 1, 4000).reshape(40, 100)
    shared_null(context, "m", "key", lambda: array, array.shape)
    cache = NullTaskCache.of(context, "m")
    path = cache.path("key")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":  # a byte of the array's data: only the zip CRC can tell
        position = data.index(np.float64(array[20, 50]).tobytes())
        path.write_bytes(data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1 :])
    elif damage == "garbage":
        path.write_bytes(b"not a cache file")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other-shape":
        NullTaskCache(cache.folder).store("key", array.reshape(80, 50))
    else:
        cache.store("other", array)
        os.replace(cache.path("other"), path)
    assert cache.load("key", array.shape) is None
    calls = []
    again, details = shared_null(context, "m", "key", lambda: calls.append(1) or array, array.shape)
    assert calls == [1] and details["null_task_reused"] is False and np.array_equal(again, array)
    assert np.array_equal(cache.load("key", array.shape), array)  # rewritten whole


def _store_many(folder: str, key: str, seconds: float) -> None:
    cache = NullTaskCache(Path(folder))
    array = np.arange(200_000, dtype=np.float64)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cache.store(key, array)


def test_concurrent_writers_never_show_a_partial_file(tmp_path: Path) -> None:
    cache = NullTaskCache(tmp_path)
    expected = np.arange(200_000, dtype=np.float64)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_store_many, args=(str(tmp_path), "key", 4.0)) for _ in range(2)]
    for writer in writers:
        writer.start()
    reads = 0
    while any(writer.is_alive() for writer in writers):
        loaded = cache.load("key", expected.shape)
        if loaded is not None:
            assert np.array_equal(loaded, expected)
            reads += 1
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert reads > 0 and np.array_equal(cache.load("key"), expected)
    assert [p.name for p in tmp_path.iterdir()] == ["key.npz"]  # no temporary file left


def test_a_writer_killed_mid_write_leaves_nothing_that_is_read(tmp_path: Path) -> None:
    # The writer blocks inside the atomic write (before its rename) and is killed there with SIGKILL.
    folder = tmp_path / "null-task" / "m"
    script = textwrap.dedent(
        f"""
        import os, sys, time
        import numpy as np
        def slow(fd):
            print("writing", flush=True)
            time.sleep(60)
        os.fsync = slow
        from fute_kit_hf.null_task import NullTaskCache
        NullTaskCache(__import__("pathlib").Path({str(folder)!r})).store("key", np.ones(1000))
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    leftovers = list(folder.iterdir())
    assert leftovers and all(p.name.endswith(".tmp") for p in leftovers)  # only the temporary file
    assert NullTaskCache(folder).load("key") is None
    context: Any = RunContext(cache_dir=tmp_path, show_progress=False)
    _, details = shared_null(context, "m", "key", lambda: np.ones(1000))
    assert details["null_task_reused"] is False
    assert [p.name for p in folder.iterdir()] == ["key.npz"]  # the orphan was removed by the next write
