"""Group jobs: packing, the same store as single jobs, a failing member isolated, stored members skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
from toy_plugins import LabelStats, ToyPlugin

from fute_kit import Examples, MethodResult, RunContext, hookimpl, option
from fute_kit.config import parse_config
from fute_kit.embedding import Space
from fute_kit.errors import OptionsError
from fute_kit.job_groups import pack_jobs
from fute_kit.pipeline import build_jobs, run_study
from fute_kit.registry import Registry
from fute_kit.store import EmbeddingStore


@attrs.frozen
class GroupedLabelStats(LabelStats):
    """The toy method with ``embed_group``: one call for many subjects, failing when told to (fault injection)."""

    name = "label-stats-grouped"

    fail_group_on: str = option("", help="embed_group fails when a text contains this (fault injection)")

    def embed_group(self, items: list[Examples], surrogate: str, context: RunContext) -> list[MethodResult]:
        if any(self.fail_group_on and self.fail_group_on in " ".join(e.texts) for e in items):
            raise RuntimeError("stacked training failed on purpose")
        context.record("embedded_together", len(items))
        return [self.embed(examples, surrogate, context) for examples in items]


class GroupedPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(GroupedLabelStats)


@pytest.fixture
def grouped_registry(fute_registry: Any) -> Registry:
    return fute_registry(ToyPlugin(), GroupedPlugin())


def _run(config: dict[str, Any], registry: Registry, out: Path, group_size: int) -> Any:
    config = {**config, "executor": {"name": "local", "group_size": group_size}}
    return run_study(parse_config(config, registry), out, registry=registry, show_progress=False)


def _arrays(out: Path) -> dict[str, np.ndarray]:
    return {e.label: e.array for e in EmbeddingStore(out / "embeddings").load_all()}


def test_jobs_of_one_space_are_packed_and_others_run_alone(
    grouped_registry: Registry, study_config: dict, tmp_path: Path
) -> None:
    jobs: list[Any] = build_jobs(parse_config(study_config, grouped_registry), tmp_path)  # 2 datasets, 2 models
    other_space = attrs.evolve(jobs[0], space=Space("none", "label-stats", {"buckets": 5}))
    mixed = [*jobs, other_space, print]
    assert pack_jobs(mixed, 3) == [(0, 1, 2), (3,), (4,), (5,)]
    assert pack_jobs(mixed, 1) == [(i,) for i in range(6)]
    with pytest.raises(ValueError, match="at least 1"):
        pack_jobs(mixed, 0)


@pytest.mark.parametrize("method", ["label-stats", "label-stats-grouped"])
def test_group_jobs_write_the_store_single_jobs_write(
    grouped_registry: Registry, study_config: dict, tmp_path: Path, method: str
) -> None:
    study_config["space"]["method"] = method
    single = _run(study_config, grouped_registry, tmp_path / "single", 1)
    grouped = _run(study_config, grouped_registry, tmp_path / "grouped", 3)
    assert [o.status for o in grouped.outcomes] == ["computed"] * 4
    a, b = _arrays(tmp_path / "single"), _arrays(tmp_path / "grouped")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(grouped.similarity.values, single.similarity.values)
    stored = EmbeddingStore(tmp_path / "grouped" / "embeddings").load_all()
    together = {e.label: e.provenance.details.get("embedded_together") for e in stored}
    expected = 3 if method == "label-stats-grouped" else None  # the first group of 3, then one alone
    assert sorted(together.values(), key=str) == sorted([expected] * 3 + [None], key=str)
    again = _run(study_config, grouped_registry, tmp_path / "grouped", 3)
    assert [o.status for o in again.outcomes] == ["reused"] * 4


def test_a_failing_member_is_its_own_failure(grouped_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["space"]["method"] = "label-stats-grouped"
    study_config["models"].insert(0, {"name": "crashy", "source": "keyword", "keyword": "x", "fail": True})
    result = _run(study_config, grouped_registry, tmp_path, 5)
    statuses = {o.name: o.status for o in result.outcomes}
    assert statuses.pop("crashy") == "failed" and set(statuses.values()) == {"computed"}
    assert "model crashed on purpose" in result.failures[0].error
    assert len(_arrays(tmp_path)) == 4


def test_a_failing_stacked_call_embeds_the_members_one_at_a_time(
    grouped_registry: Registry, study_config: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study_config["space"] = {**study_config["space"], "method": "label-stats-grouped"}
    study_config["space"]["options"] = {**study_config["space"]["options"], "fail_group_on": "good fun"}
    result = _run(study_config, grouped_registry, tmp_path / "grouped", 4)
    assert [o.status for o in result.outcomes] == ["computed"] * 4
    assert "embedding them one at a time" in caplog.text
    _run(study_config, grouped_registry, tmp_path / "single", 1)
    a, b = _arrays(tmp_path / "single"), _arrays(tmp_path / "grouped")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_a_group_skips_its_stored_members(grouped_registry: Registry, study_config: dict, tmp_path: Path) -> None:
    study_config["space"]["method"] = "label-stats-grouped"
    _run(study_config, grouped_registry, tmp_path, 1)
    study_config["datasets"][0]["labels"] = study_config["datasets"][0]["labels"][::-1]
    again = _run(study_config, grouped_registry, tmp_path, 4)
    assert [o.status for o in again.outcomes] == ["computed", "reused", "reused", "reused"]


def test_group_size_is_checked(grouped_registry: Registry) -> None:
    with pytest.raises(OptionsError, match="group_size"):
        grouped_registry.build("executor", "local", {"group_size": 0})
