"""Progress bars for long steps (tqdm, on standard error, off when not wanted), and log lines that stay clear of them.

A log or warning line written while a bar is drawn would land after the bar's text on the same terminal line.
:class:`ClearOfBarsHandler` writes each record through ``tqdm.write``, which clears the bars, writes the line on a
line of its own and redraws them; ``fute`` logs through it (:func:`log_to_console`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

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
