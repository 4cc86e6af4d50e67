"""The ray executor on a local Ray instance started by the test (num_cpus=2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fute_kit.config import parse_config
from fute_kit.pipeline import run_study
from fute_kit.store import EmbeddingStore

ray = pytest.importorskip("ray")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = ["a fine film", "a dull film", "the market fell", "shares rose", "the team won", "a late goal"]


def test_unreachable_cluster_is_a_clear_error() -> None:
    from fute_kit_ray.executor import RayExecutor, RayExecutorError

    # Runs first in this file, before the module's local Ray starts.
    assert not ray.is_initialized()
    with pytest.raises(RayExecutorError, match=r"could not connect to 127\.0\.0\.1:1"):
        list(RayExecutor(address="127.0.0.1:1").run([lambda: 1], ["x"]))


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _study(executor: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "space": {"surrogate": "minilm", "method": "textemb", "options": {"batch_size": 4}},
        "unlabeled": {"source": "inline", "texts": TEXTS},
        "datasets": [
            {"name": f"d{i}", "source": "inline", "texts": TEXTS[i:] + TEXTS[:i], "labels": ["x", "y"] * 3}
            for i in range(3)
        ],
        "models": [{"name": "prior", "source": "constant", "probabilities": {"x": 0.3, "y": 0.7}}],
    }
    if executor:
        config["executor"] = executor
    return config


@pytest.mark.slow
def test_same_embeddings_as_the_local_executor(local_ray: Any, tmp_path: Path) -> None:
    local = run_study(parse_config(_study(None)), tmp_path / "local", show_progress=False)
    remote = run_study(parse_config(_study({"name": "ray", "num_cpus": 1})), tmp_path / "ray", show_progress=False)
    assert [o.status for o in remote.outcomes] == ["computed"] * 4
    assert remote.similarity is not None and local.similarity is not None
    np.testing.assert_allclose(remote.similarity.values, local.similarity.values, atol=1e-5)
    a = {e.label: e.array for e in EmbeddingStore(tmp_path / "local" / "embeddings").load_all()}
    b = {e.label: e.array for e in EmbeddingStore(tmp_path / "ray" / "embeddings").load_all()}
    assert a.keys() == b.keys()
    for label in a:
        np.testing.assert_allclose(a[label], b[label], rtol=1e-4, atol=1e-6)
    again = run_study(parse_config(_study({"name": "ray"})), tmp_path / "ray", show_progress=False)
    assert [o.status for o in again.outcomes] == ["reused"] * 4  # results landed in the same store


@pytest.mark.slow
def test_failed_job_is_reported_and_others_finish(local_ray: Any, tmp_path: Path) -> None:
    config = _study({"name": "ray"})
    # Bad data is refused before any job starts (pre-flight); a model failing in its own job is not.
    config["models"].append({"name": "broken", "source": "constant", "probabilities": {"x": 0.0, "y": 0.0}})
    result = run_study(parse_config(config), tmp_path, show_progress=False)
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses.pop("broken") == "failed" and set(statuses.values()) == {"computed"}
    assert "not all zero" in result.failures[0].error  # the job's own message, not Ray's wrapper


def test_transient_failure_is_retried(local_ray: Any, tmp_path: Path) -> None:
    from fute_kit_ray.executor import RayExecutor

    marker = tmp_path / "attempted"

    def flaky() -> str:
        if not marker.exists():
            marker.touch()
            raise RuntimeError("transient")
        return "ok"

    def bad_input() -> str:
        from fute_kit.errors import DataError

        raise DataError("not retried")

    results = sorted(RayExecutor(max_retries=2).run([flaky, bad_input], ["flaky", "bad"]), key=lambda r: r[0])
    assert results[0][1:] == ("ok", None)
    assert isinstance(results[1][2], Exception) and "not retried" in str(results[1][2])


def test_bad_options_are_refused() -> None:
    from fute_kit.errors import OptionsError
    from fute_kit.registry import get_registry

    with pytest.raises(OptionsError, match="num_cpus"):
        get_registry().build("executor", "ray", {"num_cpus": 0})
