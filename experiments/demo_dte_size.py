"""The demo's prompt selection (results §3) with its DTEs made on other numbers of examples, its MTEs unchanged.

Results §7a found that DTEs of four times the MTEs' examples lost the Qwen prompt ranking. This reruns the
`fute demo` study of a finished demo folder (``--demo``: its store, its prediction cache and its
``prompt-accuracy.csv``, as ``bench/demo_time.py --keep`` leaves them) for each ``--limits`` N: DTEs of N train
examples, the prompts' MTEs (and the datasets' prior-only controls) on the demo's U. The prompts' MTEs are reused
from the copied store (no LLM runs); the fine-tuned classifiers are left out (they rank nothing here). Writes, per
size and target, the prompt the embedding chooses and whether it is the more accurate one (``--csv``).
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", required=True, help="a finished demo folder (embeddings/, predictions/, truth)")
    parser.add_argument("--limits", type=int, nargs="+", default=[160, 100], help="examples per DTE")
    parser.add_argument("--out", required=True, help="one study folder per size below it (dte-N)")
    parser.add_argument("--csv", default=None, help="write limit,target,chosen,top1,spearman here")
    return parser.parse_args(argv)


def rerun(demo: Path, limit: int, out: Path) -> Any:
    """The demo's study with DTEs of ``limit`` examples, its stored work copied first; its evaluation."""
    from fute_kit.config import parse_config
    from fute_kit.evaluation import evaluate_study
    from fute_kit.pipeline import run_study
    from fute_kit_demo.demo import DemoPlan, label_priors, study_config

    for part in ("embeddings", "predictions"):
        shutil.copytree(demo / part, out / part, dirs_exist_ok=True)
    plan = DemoPlan(out_dir=out, dataset_limit=limit)
    config = parse_config(study_config(plan, {}, label_priors(plan)), path=f"fute demo, DTEs of {limit}")
    result = run_study(config, out, show_progress=False)
    if result.failures:
        raise SystemExit("failed jobs: " + "; ".join(f"{o.name}: {o.error}" for o in result.failures))
    return evaluate_study(out, demo / "prompt-accuracy.csv", spell_sample=None)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    demo = Path(args.demo)
    if not (demo / "prompt-accuracy.csv").is_file() or not (demo / "embeddings").is_dir():
        raise SystemExit(f"--demo {demo}: not a finished demo folder (it needs embeddings/ and prompt-accuracy.csv)")
    rows = []
    for limit in args.limits:
        evaluation = rerun(demo, limit, Path(args.out) / f"dte-{limit}")
        for t in evaluation.targets:
            scores = t.results["embedding"]
            sims = dict(zip(t.candidates, t.similarity, strict=True))
            rows.append({"limit": limit, "target": t.target.removeprefix("dataset:"),
                         "chosen": max(sims, key=sims.__getitem__).removeprefix("model:"),
                         "top1": scores.top1, "spearman": scores.spearman})  # fmt: skip
    print("| DTE examples | target | chosen prompt | the more accurate |\n|---:|---|---|---:|")
    for r in rows:
        print(f"| {r['limit']} | {r['target']} | {r['chosen']} | {r['top1']:.0f} |")
    if args.csv:
        from fute_kit.atomic import atomic_write_text

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(args.csv, text.getvalue())


if __name__ == "__main__":
    main()
