"""A study checked before any job starts: the surrogate, the metric and every data source.

A missing file, a malformed line or a missing column would otherwise surface only when its job runs, maybe
after other embeddings trained for minutes; an unknown surrogate alias would fail inside every job. Here every
dataset and ``[unlabeled]`` source is loaded once (the jobs reuse it in this process) and checked: it loads, it
has labels, at least two of them, and enough examples for the method. Every problem is reported at once, as a
ConfigError (exit status 2), before the output folder is created.

A method may declare ``min_examples`` (an int, default 2) and ``check_surrogate(surrogate) -> str | None`` (a
message when the surrogate cannot be used, without loading it), and ``size_dependent = True`` when its embedding
changes with the number of examples it trains on (a fixed number of epochs is more steps on more examples): a
study whose DTEs and MTEs are made on very different numbers of examples then gets a warning (not an error), as
docs/results.md §7a measured it: prompts ranked against DTEs of 400 examples by MTEs of 100 texts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fute_kit.components import RunContext
from fute_kit.config import SourceRef, StudyConfig
from fute_kit.errors import ConfigError, FuteError
from fute_kit.examples import Examples
from fute_kit.registry import Registry
from fute_kit.similarity import default_metric_for

# Two labels need two examples; a method may ask for more.
MIN_EXAMPLES = 2
# DTEs and MTEs whose numbers of examples differ by more than this factor are not compared like with like (measured:
# 4 times apart hurt the Qwen prompt ranking, docs/results.md §7a, though not the demo's; 160 against 100 passes).
SIZE_RATIO = 2.0


def check_study(config: StudyConfig, registry: Registry, context: RunContext) -> list[str]:
    """Raise ConfigError listing every problem of the study's surrogate, metric and data; else return warnings."""
    method = registry.build("method", config.space.method, config.space.options)
    problems = surrogate_problems(method, config.space.surrogate)
    problems += metric_problems(config, registry)
    minimum = max(MIN_EXAMPLES, int(getattr(method, "min_examples", MIN_EXAMPLES)))
    for ref in config.datasets:
        problems += source_problems(ref, f"[[datasets]] {ref.name!r}", registry, context, minimum, labelled=True)
    if config.unlabeled is not None:
        problems += source_problems(config.unlabeled, "[unlabeled]", registry, context, minimum, labelled=False)
    if problems:
        raise ConfigError(problems, config.path or None)
    return size_warnings(config, method, registry, context)


def size_warnings(config: StudyConfig, method: Any, registry: Registry, context: RunContext) -> list[str]:
    """A warning when a size-dependent method makes DTEs and MTEs on very different numbers of examples."""
    from fute_kit.pipeline import load_examples  # memoised: the sources loaded by the checks above

    if not getattr(method, "size_dependent", False) or config.unlabeled is None or not config.models:
        return []
    u_size = len(load_examples(config.unlabeled, registry, context))
    sizes = {ref.name: len(load_examples(ref, registry, context)) for ref in config.datasets}
    apart = {name: n for name, n in sizes.items() if max(n, u_size) > SIZE_RATIO * min(n, u_size)}
    if not apart:
        return []
    listed = ", ".join(f"{name} ({n})" for name, n in apart.items())
    return [
        f"the DTEs of {listed} and the MTEs (U: {u_size} texts) are made on different numbers of examples, and "
        f"{config.space.method}'s embeddings change with that number (epochs x examples steps), not only with the "
        f"task: to compare like with like, give those datasets limit = {u_size}, or U limit = "
        f"{max(apart.values())} (docs/configuration.md, 'DTEs and MTEs of like sizes')"
    ]


def surrogate_problems(method: Any, surrogate: str) -> list[str]:
    check = getattr(method, "check_surrogate", None)
    problem = check(surrogate) if callable(check) else None
    return [f"[space]: key 'surrogate': {problem}"] if problem else []


def metric_problems(config: StudyConfig, registry: Registry) -> list[str]:
    if config.metric is not None:  # chosen in [similarity], checked with the configuration
        return []
    metric, _ = default_metric_for(config.space.method, registry, config.space.options)
    if registry.has("metric", metric):
        return []
    return [f"[space]: method {config.space.method!r} compares with {registry.unknown_message('metric', metric)}"]


def source_problems(
    ref: SourceRef, where: str, registry: Registry, context: RunContext, minimum: int, *, labelled: bool
) -> list[str]:
    """What is wrong with one source's data: it does not load, has no or one label, or too few examples."""
    from fute_kit.pipeline import load_examples  # the jobs' own loader, so they reuse what is loaded here

    try:
        examples = load_examples(ref, registry, context)
    except FuteError as exc:
        return [f"{where}: {exc}"]
    except Exception as exc:  # a source's own bug: still reported with the others, before any work
        return [f"{where}: {type(exc).__name__}: {exc}"]
    problems = []
    if len(examples) < minimum:
        problems.append(
            f"{where}: {len(examples)} example(s); the method needs at least {minimum}: check the source's path, "
            "split, filter or limit"
        )
    if labelled:
        problems += label_problems(examples, where)
    return problems


def label_problems(examples: Examples, where: str) -> list[str]:
    """No labels, or a single label (class or target value) for every example: nothing for a task to tell apart."""
    if examples.label_kind == "none" or examples.labels is None:
        return [f"{where}: no labels: set the source's label column"]
    if not len(examples):
        return []
    if examples.label_kind == "hard":
        present = sorted({examples.label_names[i] for i in np.unique(examples.labels)})
        if len(present) < 2:
            return [
                f"{where}: every one of its {len(examples)} examples has the label {present[0]!r}; "
                "a task needs at least two labels: check the label column, split or limit"
            ]
    elif examples.label_kind == "regression" and np.ptp(examples.labels) == 0:
        return [f"{where}: all {len(examples)} targets equal {float(examples.labels[0])!r}; a task needs two values"]
    return []
