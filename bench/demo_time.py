"""Wall time of `fute demo` from nothing (fresh cache and output) and of a second run from the store.

    .venv/bin/python bench/demo_time.py [--size quick|headline] [--out bench/RESULTS-demo.md] [--keep runs/demo]

Goals: the first run within 10 minutes on 2 CPU cores, the second under a minute. Besides the wall time it
records the CPU time (user + system) of the demo process: on a shared machine that is the steadier figure (two
idle cores give a wall time of about half of it). The demo's printed summary is copied into the results.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def timed_demo(out: Path, cache: Path, size: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``fute demo`` in a fresh process."""
    env = {**os.environ, "FUTE_KIT_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "FUTE_KIT_NO_PROGRESS": "1"}
    fute = Path(sys.executable).with_name("fute")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([str(fute), "demo", "--out", str(out), "--size", size, "--no-progress"], env=env, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS-demo.md"))
    parser.add_argument("--size", choices=("quick", "headline"), default="quick", help="fute demo --size")
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
        first, first_cpu = timed_demo(out, root / "cache", args.size)
        second, second_cpu = timed_demo(out, root / "cache", args.size)
        load_after = os.getloadavg()[0]
        summary = (out / "demo-summary.md").read_text(encoding="utf-8")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = "\n".join(
        [
            "# fute demo",
            "",
            f"Command: `.venv/bin/python bench/demo_time.py --size {args.size}` ({datetime.now(UTC):%Y-%m-%d %H:%M} "
            f"UTC, {os.cpu_count()} CPUs, load average {load_before:.1f} before, {load_after:.1f} after)",
            "",
            "| run | wall time | CPU time (user + system) | goal |",
            "|---|---|---|---|",
            f"| first run (fresh cache: fine-tuning, all embeddings, prompt accuracies) | {first / 60:.1f} min "
            f"| {first_cpu / 60:.1f} min | <= 10 min on 2 idle cores |",
            f"| second run (everything from the store and caches) | {second:.0f} s | {second_cpu:.0f} s | < 60 s |",
            "",
            "The demo's summary (`demo-summary.md`):",
            "",
            summary,
        ]
    )
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
