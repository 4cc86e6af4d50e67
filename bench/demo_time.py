"""Wall time of `fute demo` from nothing (fresh cache and output) and of a second run from the store.

    .venv/bin/python bench/demo_time.py [--out bench/RESULTS-demo.md] [--keep runs/demo]

Goals: the first run within 10 minutes on 2 CPU cores, the second under a minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def timed_demo(out: Path, cache: Path) -> float:
    env = {**os.environ, "FUTE_KIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "FUTE_KIT_NO_PROGRESS": "1"}
    fute = Path(sys.executable).with_name("fute")
    started = time.perf_counter()
    subprocess.run([str(fute), "demo", "--out", str(out), "--no-progress"], env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-demo.md"))
    parser.add_argument(
        "--keep", type=Path, help="write the demo's output here (replaced if it exists) and keep it, for results.md"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="fute-bench-demo-"))
    out = args.keep or root / "out"
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
    try:
        load_before = os.getloadavg()[0]
        first = timed_demo(out, root / "cache")
        second = timed_demo(out, root / "cache")
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(
        [
            "# fute demo",
            "",
            f"Command: `.venv/bin/python bench/demo_time.py` ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} CPUs, load average {load_before:.1f} before, {load_after:.1f} after)",
            "",
            "| run | wall time | goal |",
            "|---|---|---|",
            f"| first run (fresh cache: conversion, fine-tuning, all embeddings) | {first / 60:.1f} min | <= 10 min |",
            f"| second run (everything from the store and caches) | {second:.0f} s | < 60 s |",
            "",
        ]
    )
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
