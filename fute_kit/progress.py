"""Progress bars for long steps (tqdm, on standard error, off when not wanted)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled(default: bool = True) -> bool:
    return default and not os.environ.get("FUTE_KIT_NO_PROGRESS")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    """Wrap an iterable in a progress bar when enabled (and ``FUTE_KIT_NO_PROGRESS`` is unset)."""
    if not progress_enabled(enabled):
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)
