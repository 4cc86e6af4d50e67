"""Group jobs on a local Ray cluster of 2 worker processes: the same store as single jobs, failures isolated.

The study is taskemb on a tiny random BERT (seconds per subject on a CPU). Where taskemb has ``embed_group``,
each group is trained together; without it, a group's members run one after another in the group's task.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

from fute_kit.components import RunContext
from fute_kit.config import parse_config
from fute_kit.pipeline import EmbedJob, build_jobs, run_study
from fute_kit.registry import Registry
from fute_kit.store import EmbeddingStore

ray = pytest.importorskip("ray")
pytest.importorskip("fute_kit_taskemb")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

POSITIVE = ["a wonderful film", "great acting", "i loved it", "superb and funny", "a delight", "truly great fun"]
NEGATIVE = ["a dull mess", "boring and long", "i hated the plot", "awful acting", "a waste of time", "bad jokes"]
TEXTS = [t for pair in zip(POSITIVE, NEGATIVE, strict=True) for t in pair]
FAST = {"epochs": 2, "learning_rate": 1e-3, "batch_size": 4, "device": "cpu", "contrast": "none"}


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _study(surrogate: str, executor: dict[str, Any], broken: bool = False) -> dict[str, Any]:
    labels = ["positive", "negative"] * 6
    datasets = [
        {"name": f"d{i}", "source": "inline", "texts": TEXTS, "labels": labels[i:] + labels[:i]} for i in range(4)
    ]
    models = [{"name": "prior", "source": "constant", "probabilities": {"positive": 0.3, "negative": 0.7}}]
    if broken:  # fails in its own job, while labelling U (after the pre-flight checks)
        models.insert(0, {"name": "broken", "source": "constant", "probabilities": {"positive": 0, "negative": 0}})
    return {
        "space": {"surrogate": surrogate, "method": "taskemb", "options": FAST},
        "unlabeled": {"source": "inline", "texts": TEXTS},
        "datasets": datasets,
        "models": models,
        "executor": executor,
    }


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    unit = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b)]
    return np.sum(unit[0] * unit[1], axis=1)


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return {e.label: e.array for e in EmbeddingStore(out / "embeddings").load_all()}


@pytest.mark.slow
def test_group_jobs_write_the_store_single_jobs_write(
    local_ray: Any, tiny_model_dir: Callable[..., str], tmp_path: Path
) -> None:
    bert = tiny_model_dir("bert")
    single = run_study(parse_config(_study(bert, {"name": "local"})), tmp_path / "single", show_progress=False)
    config = parse_config(_study(bert, {"name": "ray", "group_size": 2}))
    grouped = run_study(config, tmp_path / "grouped", show_progress=False)
    assert [o.status for o in grouped.outcomes] == ["computed"] * 5
    from fute_kit_taskemb.method import TaskEmb

    # 5 jobs in groups of 2: d0+d1, d2+d3 (trained together where taskemb has embed_group), the model alone.
    stacked = hasattr(TaskEmb, "embed_group")
    a, b = _arrays(tmp_path / "single"), _arrays(tmp_path / "grouped")
    assert a.keys() == b.keys() and len(a) == 5
    for label in a:
        if stacked and label.startswith("dataset:"):  # stacked training: only the dropout masks differ
            assert _row_cosines(b[label], a[label]).min() > 0.9, label
        else:
            np.testing.assert_allclose(b[label], a[label], rtol=1e-3, atol=1e-6, err_msg=label)
    if not stacked:
        np.testing.assert_allclose(grouped.similarity.values, single.similarity.values, atol=1e-4)
    stored = EmbeddingStore(tmp_path / "grouped" / "embeddings").load_all()
    group_sizes = {e.label: e.provenance.details.get("group_size") for e in stored}
    assert group_sizes == {**{f"dataset:d{i}": 2 if stacked else None for i in range(4)}, "model:prior": None}
    again = run_study(config, tmp_path / "grouped", show_progress=False)
    assert [o.status for o in again.outcomes] == ["reused"] * 5


@pytest.mark.slow
def test_a_failing_member_fails_alone(local_ray: Any, tiny_model_dir: Callable[..., str], tmp_path: Path) -> None:
    config = parse_config(_study(tiny_model_dir("bert"), {"name": "ray", "group_size": 3}, broken=True))
    result = run_study(config, tmp_path, show_progress=False)
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses.pop("broken") == "failed" and set(statuses.values()) == {"computed"}
    assert "not all zero" in result.failures[0].error  # the member's own message
    assert len(_arrays(tmp_path)) == 5


@pytest.mark.slow
def test_a_member_transient_error_is_retried_alone(
    local_ray: Any, tiny_model_dir: Callable[..., str], tmp_path: Path
) -> None:
    from fute_kit_ray.executor import RayExecutor

    @attrs.frozen
    class FlakyJob(EmbedJob):  # defined here, so Ray ships it to the workers by value
        marker: str = ""

        def prepare(self, registry: Registry, context: RunContext, store: Any) -> tuple[Any, str]:
            if not Path(self.marker).exists():
                Path(self.marker).touch()
                raise OSError("shared filesystem hiccup")
            return EmbedJob.prepare(self, registry, context, store)

    config = parse_config(_study(tiny_model_dir("bert"), {"name": "ray"}))
    jobs: list[Any] = build_jobs(config, tmp_path / "out", show_progress=False)[:3]
    for i in (1, 2):
        jobs[i] = FlakyJob(**attrs.asdict(jobs[i], recurse=False), marker=str(tmp_path / f"tried-{i}"))
    names = [job.label for job in jobs]
    retried = dict((i, (v, e)) for i, v, e in RayExecutor(group_size=3, max_retries=1).run(jobs, names))
    assert [retried[i][0].status for i in range(3)] == ["computed"] * 3
    jobs = build_jobs(config, tmp_path / "again", show_progress=False)[:2]
    jobs[1] = FlakyJob(**attrs.asdict(jobs[1], recurse=False), marker=str(tmp_path / "tried-again"))
    failed = dict((i, (v, e)) for i, v, e in RayExecutor(group_size=2, max_retries=0).run(jobs, names[:2]))
    assert failed[0][0].status == "computed" and "hiccup" in str(failed[1][1])


def test_group_size_below_one_is_refused() -> None:
    from fute_kit.errors import OptionsError
    from fute_kit.registry import get_registry

    with pytest.raises(OptionsError, match="group_size"):
        get_registry().build("executor", "ray", {"group_size": 0})
