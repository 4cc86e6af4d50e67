"""Log and warning lines written while a progress bar is drawn stand on lines of their own."""

from __future__ import annotations

import io
import logging

from tqdm import tqdm

from fute_kit.progress import ClearOfBarsHandler


def shown_line(handler_class: type[logging.StreamHandler]) -> str:  # type: ignore[type-arg]
    """What a terminal shows on the line of a warning logged in the middle of a bar (after its last \\r)."""
    stream = io.StringIO()
    handler = handler_class(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"fute_kit.test_progress.{handler_class.__name__}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for step in tqdm(range(3), file=stream, desc="embeddings", mininterval=0, ncols=60):
            if step == 1:
                logger.warning("dataset:reviews failed")
    finally:
        logger.removeHandler(handler)
    line = next(line for line in stream.getvalue().split("\n") if "dataset:reviews failed" in line)
    return line.split("\r")[-1]


def test_a_warning_during_a_bar_is_written_on_its_own_line() -> None:
    assert shown_line(ClearOfBarsHandler) == "WARNING dataset:reviews failed"


def test_a_plain_handler_would_glue_the_warning_onto_the_bar() -> None:
    # The control: what fute wrote before, a bar's text then the warning on one line.
    glued = shown_line(logging.StreamHandler)
    assert glued.startswith("embeddings:") and glued.endswith("WARNING dataset:reviews failed")


def test_fute_logs_through_the_bar_aware_handler() -> None:
    import subprocess
    import sys

    code = (
        "import logging, sys\n"
        "from fute_kit.cli import cli\n"
        "sys.argv = ['fute', *sys.argv[1:], 'plugins']\n"
        "try:\n    cli(prog_name='fute', standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(type(logging.getLogger().handlers[0]).__name__)\n"
    )
    args = [sys.executable, "-c", code, "-v"]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "ClearOfBarsHandler"
