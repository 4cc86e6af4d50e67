"""Progress bars for long steps (tqdm, on standard error, off when not wanted), and log lines that stay clear of them.

On a file or a pipe (CI logs, ``fute run ... 2> log``) progress is plain lines at an interval (:class:`PlainProgress`),
never carriage returns.

A log or warning line written while a bar is drawn would land after the bar's text on the same terminal line.
:class:`ClearOfBarsHandler` writes each record through ``tqdm.write``, which clears the bars, writes the line on a
line of its own and redraws them; ``fute`` logs through it (:func:`log_to_console`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

# Seconds between two plain progress lines when standard error is a file or a pipe (override:
# FUTE_KIT_PROGRESS_INTERVAL): often enough to see a long step move in a log, rarely enough not to flood it.
PLAIN_INTERVAL = 30.0


def progress_enabled(default: bool = True) -> bool:
    return default and not os.environ.get("FUTE_KIT_NO_PROGRESS")


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    """Wrap an iterable in a progress bar when enabled (and ``FUTE_KIT_NO_PROGRESS`` is unset)."""
    if not progress_enabled(enabled):
        yield from iterable
        return
    if not _on_terminal():
        bar = PlainProgress(total, desc)
        try:
            for item in iterable:
                yield item
                bar.update()
        finally:
            bar.close()
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


def progress_bar(total: int | None, desc: str = "", enabled: bool = True) -> Any:
    """A bar to ``update(n)`` and ``close()``: tqdm on a terminal, plain lines on a file or a pipe, or nothing."""
    if progress_enabled(enabled) and not _on_terminal():
        return PlainProgress(total, desc)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=not progress_enabled(enabled))


def quiet_library_bars() -> None:
    """On a file or a pipe, switch off the HuggingFace libraries' own bars ("Loading weights", downloads).

    They draw with carriage returns wherever they write; a user's explicit HF_HUB_DISABLE_PROGRESS_BARS wins.
    """
    if _on_terminal():
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read by huggingface_hub (and so transformers)
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":  # imported already: tell it too
        hub.disable_progress_bars()


def _on_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


class PlainProgress:
    """Progress as plain lines (``desc: 40/100 (40%), 31s``) on standard error, at most one per interval.

    Where standard error is a file or a pipe a bar's carriage returns would pile up in one endless line; these
    lines read well in a log. A step shorter than the interval writes nothing; a longer one ends with a last line.
    """

    def __init__(self, total: int | None, desc: str = "", interval: float | None = None) -> None:
        self.total, self.desc, self.n, self.written = total, desc or "progress", 0, 0
        if interval is None:
            interval = float(os.environ.get("FUTE_KIT_PROGRESS_INTERVAL") or PLAIN_INTERVAL)
        self.interval = interval
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.interval:
            self._write()

    def close(self) -> None:
        if self.written and self.written != self.n:  # the end of a step that has shown progress before
            self._write()

    def _write(self) -> None:
        self.last, self.written = time.monotonic(), self.n
        share = f"/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.n}{share}, {self.last - self.started:.0f}s", file=sys.stderr, flush=True)


class ClearOfBarsHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A console log handler whose lines never share a terminal line with a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def log_to_console(level: int, stream: TextIO | None = None) -> None:
    """Log to standard error as ``LEVEL message`` lines, clear of progress bars, Python warnings included.

    Like ``logging.basicConfig``, it leaves a root logger that already has handlers as it is.
    """
    handler = ClearOfBarsHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    logging.captureWarnings(True)  # warnings.warn(...) from libraries would write straight onto a bar otherwise
