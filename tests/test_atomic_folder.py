"""Atomic folders: a folder appears whole or not at all, replaces an older one, and the temporaries of killed
writers are removed (by the next write of the same target, or ``remove_orphans`` for a whole folder)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fute_kit.atomic import _writer, atomic_folder, remove_orphans


def _fill(folder: Path, content: str) -> None:
    (folder / "weights.bin").write_text(content * 1000)
    (folder / "sub").mkdir()
    (folder / "sub" / "info.json").write_text(content)


def _whole(folder: Path) -> str:
    """The content a folder was written with; fails on a half-written one.

    Read through the folder's descriptor: both files come from the one folder opened, even if it is replaced.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        content = _read(fd, "sub/info.json")
        assert _read(fd, "weights.bin") == content * 1000
    finally:
        os.close(fd)
    return content


def _read(folder_fd: int, name: str) -> str:
    with open(os.open(name, os.O_RDONLY, dir_fd=folder_fd), encoding="utf-8") as handle:
        return handle.read()


def test_a_folder_appears_whole_and_replaces_an_older_one(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "model"
    with atomic_folder(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(f".model.{_writer()}-{os.getpid()}.")
        _fill(tmp, "a")
        assert not target.exists()
    assert _whole(target) == "a"
    assert target.stat().st_mode & 0o777 == 0o777 & ~_umask()
    with atomic_folder(target) as tmp:
        _fill(tmp, "b")
    assert _whole(target) == "b"
    assert [p.name for p in target.parent.iterdir()] == ["model"]


def test_a_failed_write_keeps_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        _fill(tmp, "old")
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        _fill(tmp, "new")
        raise RuntimeError("interrupted")
    assert _whole(target) == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_the_temporaries_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    # The writer blocks inside the atomic folder (before its rename) and is killed there with SIGKILL.
    script = textwrap.dedent(
        f"""
        import pathlib, time
        from fute_kit.atomic import atomic_folder
        for name in ("a", "b"):
            with atomic_folder(pathlib.Path({str(tmp_path)!r}) / name) as tmp:
                (tmp / "weights.bin").write_text("half")
                if name == "b":
                    print("writing", flush=True)
                    time.sleep(60)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    orphan = next(p for p in tmp_path.iterdir() if p.name.startswith(".b."))
    assert orphan.name.endswith(".tmp") and not (tmp_path / "b").exists()

    # Temporaries that are not orphans: a running writer's (this process) and another machine's.
    live = tmp_path / f".c.{_writer()}-{os.getpid()}.x.tmp"
    other_host = tmp_path / f".c.{'0' * 6 if _writer() != '0' * 6 else '1' * 6}-{writer.pid}.x.tmp"
    for folder in (live, other_host):
        folder.mkdir()
    with atomic_folder(tmp_path / "b.x") as tmp:  # another target whose name starts like b's: b's stays
        _fill(tmp, "x")
    assert orphan.is_dir()
    with atomic_folder(tmp_path / "b") as tmp:  # the next write of b removes it
        _fill(tmp, "b")
    assert not orphan.exists() and _whole(tmp_path / "b") == "b"

    orphan.mkdir()  # left again; remove_orphans clears a whole folder's
    remove_orphans(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a", "b", "b.x", live.name, other_host.name])


def _write_many(target: str, content: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with atomic_folder(target) as tmp:
            _fill(tmp, content)


def test_concurrent_writers_of_one_folder_never_show_half_of_one(tmp_path: Path) -> None:
    target = tmp_path / "model"
    spawn = multiprocessing.get_context("spawn")
    writers = [spawn.Process(target=_write_many, args=(str(target), c, 3.0)) for c in "xy"]
    for writer in writers:
        writer.start()
    seen = set()
    while any(writer.is_alive() for writer in writers):
        with contextlib.suppress(FileNotFoundError):  # the old folder moved aside and removed while read
            seen.add(_whole(target))
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert seen <= {"x", "y"} and _whole(target) in {"x", "y"}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
