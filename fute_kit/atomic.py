"""Crash-safe file writes: write a temporary file, fsync it, rename it over the target.

The temporary file is named after its target and its writer (``.NAME.<host>-<pid>.XXXX.tmp``): a process
killed mid-write (SIGKILL, power) leaves it behind, and the next write of the same target removes those whose
writer on this machine is gone, so a rerun leaves no stray temporary file.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{_writer()}-{os.getpid()}.", suffix=".tmp", dir=target.parent)
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


@functools.cache
def _writer() -> str:
    """This machine, short: temporary files of a shared folder's other machines are never taken for orphans."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def _remove_orphans(target: Path) -> None:
    """Remove temporary files of ``target`` left by writers on this machine that no longer run (killed mid-write)."""
    prefix = f".{target.name}.{_writer()}-"
    for entry in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = entry.name[len(prefix) :].partition(".")[0]
        if not entry.name.startswith(prefix) or not pid.isdigit() or _running(int(pid)):
            continue
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
