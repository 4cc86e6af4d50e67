"""Prompt selection with each prompt's MTE made on the target dataset's own unlabelled inputs, not on a shared U.

The MTEs of `llm_prompts.py` are made on one U for every dataset (FUTE's setting: one space for all). A DTE is
made on its dataset's inputs, so a prompt's MTE and the DTE it is compared with differ in their inputs as well as
their labels. Here, for each dataset D and seed, one study (``<out>/seed-N/D``) embeds
- D's DTE (train split, ``--train-limit`` examples), as in llm_prompts.py,
- the prompts of D's genre (``genre_of``) on ``--u-limit`` inputs of D's test split, labels unused, which are the
  inputs ``fute measure --split test --limit N`` scored: the LLM's answers come from its response cache,
- D's fine-tuned classifier on the same inputs (``--classifiers``): a reference that should be nearest,
in the space of docs/results.md's section 1. Judge the rankings with
``fute evaluate --out <out>/seed-0/D --pool ... --truth accuracy.csv --no-spell --skip-absent-targets`` (printed); the
label-free baselines there are then on the same inputs as the MTEs (the ``@target`` ones of llm_prompts' studies).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from llm_prompts import find_classifiers, genre_of, run_seed, study_data  # beside this script


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="docs/examples/prompt-pools-qwen.toml", help="study TOML with the prompts")
    parser.add_argument("--out", required=True, help="output folder (one study per seed and dataset below it)")
    parser.add_argument("--datasets", nargs="+", required=True, help="builtin labelled datasets (targets)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-limit", type=int, default=400, help="examples per dataset for its DTE")
    parser.add_argument("--u-limit", type=int, default=100, help="test inputs of the dataset for each MTE")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per text")
    parser.add_argument("--epochs", type=int, default=3, help="method training epochs")
    parser.add_argument("--classifiers", default=None, metavar="FOLDER", help="as llm_prompts.py: the reference")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="another method option")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def target_study(args: argparse.Namespace, seed: int, dataset: str, classifiers: dict[str, Path]) -> dict[str, Any]:
    """llm_prompts' study for one seed, narrowed to one dataset: its DTE, its genre's prompts, U = its test inputs."""
    narrowed = argparse.Namespace(**{**vars(args), "datasets": [dataset], "unlabeled": None})
    data = study_data(narrowed, seed, {dataset: classifiers[dataset]} if dataset in classifiers else {})
    data["unlabeled"] = {
        "name": f"{dataset}-test-inputs",
        "source": "builtin",
        "dataset": dataset,
        "split": "test",
        "limit": args.u_limit,
    }
    data["models"] = [m for m in data["models"] if genre_of(m["name"], {}) == dataset]
    if not any(m["name"] != f"clf-{dataset}" for m in data["models"]):
        raise SystemExit(f"{args.config}: no LLM entry of {dataset}'s genre (its name names the genre, as qwen-topic)")
    return data


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import transformers

    from fute_kit.config import parse_config
    from fute_kit.registry import get_registry

    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("fute_kit").setLevel(logging.WARNING)
    classifiers = find_classifiers(args.classifiers, args.datasets)
    registry = get_registry()
    out = Path(args.out)
    configs = {  # every study parsed before the first runs: a bad entry fails at once
        (seed, d): parse_config(target_study(args, seed, d, classifiers), registry, f"{args.config} ({d}, seed {seed})")
        for seed in args.seeds
        for d in args.datasets
    }
    started = time.perf_counter()
    for (seed, dataset), config in configs.items():
        run_seed(config, out / f"seed-{seed}" / dataset, registry, args.quiet)
        print(f"seed {seed} {dataset}: done at {time.perf_counter() - started:.0f} s", flush=True)
    folders = [str(out / f"seed-{seed}" / d) for seed, d in configs]
    print("Judge them: fute evaluate --out " + folders[0] + "".join(f" --pool {f}" for f in folders[1:])
          + " --truth ACCURACY.csv --no-spell --skip-absent-targets --results RESULTS")  # fmt: skip


if __name__ == "__main__":
    main()
