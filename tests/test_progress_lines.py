"""Progress on a file or a pipe: plain lines at an interval, never a bar's carriage returns."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from fute_kit.progress import PlainProgress, progress, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """What progress wrote on standard error, captured: a pipe, not a terminal."""
    monkeypatch.delenv("FUTE_KIT_NO_PROGRESS", raising=False)
    return lambda: capsys.readouterr().err


def test_plain_lines_on_a_pipe(shown: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUTE_KIT_PROGRESS_INTERVAL", "0")
    assert list(progress(range(4), total=4, desc="embeddings")) == [0, 1, 2, 3]
    written = shown()
    assert [line.split(",")[0] for line in written.splitlines()] == [
        f"embeddings: {n}/4 ({25 * n}%)" for n in range(1, 5)
    ]
    assert "\r" not in written


def test_a_short_step_writes_nothing_and_a_long_one_ends_with_a_last_line(shown: Callable[[], str]) -> None:
    assert list(progress(range(50), total=50, desc="quick")) == list(range(50))  # under the default 30 s
    assert shown() == ""
    bar = PlainProgress(10, "openai model", interval=0)
    bar.update(3)
    bar.interval = 3600.0  # the next updates fall inside the interval: no line, until the last one
    bar.update(7)
    bar.close()
    lines = shown().splitlines()
    assert len(lines) == 2 and lines[0].startswith("openai model: 3/10 (30%)")
    assert lines[1].startswith("openai model: 10/10 (100%)")


def test_a_terminal_still_gets_a_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUTE_KIT_NO_PROGRESS", raising=False)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = progress_bar(3, "embeddings")
    assert not isinstance(bar, PlainProgress)
    bar.update(3)
    bar.close()
    assert "\r" in terminal.getvalue()


def bars_disabled(stderr_terminal: bool, hub_first: bool) -> str:
    """In a fresh process (huggingface_hub keeps the setting for good): are the hub's bars off after the call?"""
    code = (
        "import sys\n"
        + ("import huggingface_hub.utils\n" if hub_first else "")
        + ("sys.stderr.isatty = lambda: True\n" if stderr_terminal else "")
        + "from fute_kit.progress import quiet_library_bars\n"
        "quiet_library_bars()\n"
        "from huggingface_hub.utils import are_progress_bars_disabled\n"
        "print(are_progress_bars_disabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_library_bars_are_switched_off_on_a_pipe_and_kept_on_a_terminal() -> None:
    pytest.importorskip("huggingface_hub")
    assert bars_disabled(stderr_terminal=False, hub_first=False) == "True"
    assert bars_disabled(stderr_terminal=False, hub_first=True) == "True"  # imported before: told directly
    assert bars_disabled(stderr_terminal=True, hub_first=False) == "False"
