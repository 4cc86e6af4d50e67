"""Crash-safe writes of files and folders: write a temporary one, fsync it, rename it over the target.

The temporary file or folder is named after its target and its writer (``.NAME.<host>-<pid>.XXXX.tmp``): a
process killed mid-write (SIGKILL, power) leaves it behind, and the next write of the same target removes those
whose writer on this machine is gone, so a rerun leaves no stray temporary; ``remove_orphans`` does the same
for every target of a folder.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    A crash or Ctrl-C leaves either the old file or the new one, never half of one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": ""}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates files readable by the owner only; give the result normal permissions.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb", encoding=None) as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` to write into; on success it replaces ``path`` by renaming.

    A crash or Ctrl-C leaves either the old folder or the new one, never half of one (a folder already at
    ``path`` is moved aside, the new one renamed into place, then the old one removed).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        for file in (f for f in tmp.rglob("*") if f.is_file() and not f.is_symlink()):
            _fsync_path(file)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates folders readable by the owner only
        _rename_into_place(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_into_place(tmp: Path, target: Path) -> None:
    """Rename the folder ``tmp`` to ``target``; what is there (ours or a concurrent writer's) is moved aside first.

    A folder cannot be renamed over a non-empty one, so the old one goes aside (named as a temporary: an orphan
    if killed now), the new one takes its place, and the old one is removed; the last writer wins.
    """
    old = tmp.with_name(tmp.name.removesuffix(".tmp") + "-old.tmp")
    while True:
        shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(target, old)
        try:
            os.replace(tmp, target)
            break
        except OSError as exc:  # another writer renamed its folder into place in between: again
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    shutil.rmtree(old, ignore_errors=True)


def remove_orphans(folder: str | Path) -> None:
    """Remove every temporary file or folder in ``folder`` whose writer on this machine no longer runs.

    For a folder of many targets, some never written again (a killed writer's 90 MB model would stay forever).
    """
    _remove_dead_temporaries(Path(folder), None)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{_writer()}-{os.getpid()}."


@functools.cache
def _writer() -> str:
    """This machine, short: temporary files of a shared folder's other machines are never taken for orphans."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _remove_orphans(target: Path) -> None:
    """Remove temporaries of ``target`` left by writers on this machine that no longer run (killed mid-write)."""
    _remove_dead_temporaries(target.parent, target.name)


def _remove_dead_temporaries(folder: Path, name: str | None) -> None:
    """Temporaries ``.NAME.<host>-<pid>.XXXX.tmp`` in ``folder`` (of target ``name``, or any) of dead writers."""
    pattern = f".{glob.escape(name)}.*.tmp" if name is not None else ".*.tmp"
    for entry in folder.glob(pattern):
        head, _, _ = entry.name.removesuffix(".tmp").rpartition(".")  # the random part has no dot
        owner, _, writer = head.rpartition(".")
        host, _, pid = writer.partition("-")
        if (name is not None and owner != f".{name}") or host != _writer() or not pid.isdigit() or _running(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):  # another process removed it first
                entry.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
