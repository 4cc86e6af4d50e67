"""The whole extension surface of fute_kit: one hook per kind of thing a plugin provides.

Registration is a callback: ``register(cls, name=None, aliases=(), description="")`` is called once
per component, so new keyword arguments never break old plugins.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("fute_kit")
hookimpl = pluggy.HookimplMarker("fute_kit")


@hookspec
def register_dataset_sources(register: Any) -> None:
    """Register dataset sources: classes with ``load(context) -> Examples``."""


@hookspec
def register_model_sources(register: Any) -> None:
    """Register model sources: classes with ``predict(inputs, context) -> Examples``."""


@hookspec
def register_methods(register: Any) -> None:
    """Register embedding methods: classes with ``embed(examples, surrogate, context)``."""


@hookspec
def register_metrics(register: Any) -> None:
    """Register similarity metrics: classes with ``matrix(arrays) -> ndarray``."""


@hookspec
def register_executors(register: Any) -> None:
    """Register executors that run a study's independent jobs (local, a cluster...)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Add sub-commands to the ``fute`` click group."""


@hookspec(firstresult=True)
def adapt_model(obj: Any) -> Any:
    """Turn an arbitrary object (an already loaded model...) into a model source, or return None."""


@hookspec
def study_finished(out_dir: Any, config: Any, result: Any) -> None:
    """Called after ``fute run`` wrote its outputs (reports, notifications...)."""


@hookspec
def report_setup(report: Any) -> None:
    """Facts about this plugin's set-up for ``fute plugins`` (where its model aliases resolve...).

    Call ``report(topic, text)`` once per fact; keep it cheap (no model loads).
    """
