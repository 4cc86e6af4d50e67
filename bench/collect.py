"""Assemble docs/benchmarks.md from the tables the bench scripts wrote (bench/RESULTS-*.md).

.venv/bin/python bench/collect.py
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parents[1]
SECTIONS = [
    ("taskemb", "TaskEmb Fisher pass (`bench/taskemb_fisher.py`)"),
    ("taskemb-gpu", "TaskEmb Fisher pass and TuPaTE step on a GPU (H100, lent for one session)"),
    ("tupate", "TuPaTE: one tuning step vs one fine-tuning step (`bench/tupate_step.py`)"),
    ("openai", "OpenAI-compatible source against the local llama.cpp server (`bench/openai_throughput.py`)"),
    ("llm-paths", "Qwen2.5-Coder-1.5B-Instruct: llama.cpp server vs transformers (`bench/llm_paths.py`)"),
    ("ray", "Local vs Ray executor (`bench/ray_executor.py`)"),
    ("demo", "The main job, `fute demo` (`bench/demo_time.py`)"),
    ("load", "Study load: many small subjects (`bench/study_load.py`)"),
    ("null-task", "Sharing the null task (`bench/null_task_sharing.py`)"),
    ("embedding-speed", "Per-embedding speed options on the CPU (`bench/embedding_speed.py`)"),
]
HEADER = """# Benchmarks

Speed and memory goals live in `bench/` scripts that measure the things compared **side by side in one run**
and print ratios; each script writes its table to `bench/RESULTS-<name>.md`, and `bench/collect.py` copies
them here. No test is timed. Run them all with `make bench`, or one with the command shown in its section.

**Conditions.** Unless a table says otherwise these figures come from the project's 2-core CPU machine
(x86_64, torch 2.13.0+cpu); the GPU section comes from an H100 lent to one session. Several were taken
**while other busy processes shared the two cores** (each table states its load): absolute times are then
inflated and are upper bounds; the ratios, measured on the same batches in the same process, are what the
goals are about.

"""


def main() -> None:
    parts = [HEADER]
    for name, title in SECTIONS:
        path = ROOT / "bench" / f"RESULTS-{name}.md"
        lines = path.read_text().splitlines() if path.exists() else ["_not measured yet_"]
        if lines and lines[0].startswith("# "):
            lines = lines[1:]
        parts.append(f"## {title}\n\n" + "\n".join(lines).strip() + "\n\n")
    (ROOT / "docs" / "benchmarks.md").write_text("".join(parts).rstrip() + "\n")


if __name__ == "__main__":
    main()
