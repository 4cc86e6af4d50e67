"""The embedding store: content addressing, atomic writes, listing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fute_kit import EmbeddingStore, Provenance, Space, TaskEmbedding
from fute_kit.atomic import atomic_write_text

SPACE = Space("minilm", "taskemb", {"seed": 0})


def _emb(subject: str = "news", fingerprint: str = "fp1", value: float = 1.0) -> TaskEmbedding:
    return TaskEmbedding(
        np.full((3, 4), value), "dataset", subject, SPACE, Provenance(fingerprint, 10, details={"a": 1})
    )


def test_round_trip(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path)
    store.put(_emb())
    got = store.get(SPACE, "dataset", "news", "fp1")
    assert got is not None and np.array_equal(got.array, np.full((3, 4), 1.0))
    assert got.space == SPACE and got.provenance.details == {"a": 1}
    assert store.contains(SPACE, "dataset", "news", "fp1")
    assert not store.contains(SPACE, "dataset", "news", "fp2")  # other data, other key
    assert [s.id for s in store.spaces()] == [SPACE.id]


def test_listing(tmp_path: Path) -> None:
    store = EmbeddingStore(tmp_path)
    store.put(_emb("a/b weird name", "fp1"))
    store.put(_emb("other", "fp2"))
    entries = store.entries()
    assert sorted(e.subject for e in entries) == ["a/b weird name", "other"]
    assert all(e.shape == (3, 4) for e in entries)


def test_crash_during_write_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = EmbeddingStore(tmp_path)
    real_replace = os.replace
    calls = []

    def crash_on_sidecar(src: str, dst: str) -> None:
        calls.append(dst)
        if str(dst).endswith(".json") and "space.json" not in str(dst):
            raise KeyboardInterrupt  # Ctrl-C between the array and its sidecar
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_sidecar)
    with pytest.raises(KeyboardInterrupt):
        store.put(_emb())
    monkeypatch.setattr(os, "replace", real_replace)
    assert store.get(SPACE, "dataset", "news", "fp1") is None  # not "there" without its sidecar
    assert store.entries() == []
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind
    store.put(_emb())  # a rerun completes it
    assert store.get(SPACE, "dataset", "news", "fp1") is not None


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), __import__("fute_kit.atomic").atomic.atomic_open(target) as handle:
        handle.write("new, half")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]
