"""Cosine: hand-computed values, per-component and Task2Vec normalisation, centring, reference files, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fute_kit_metrics
from fute_kit.errors import DataError, OptionsError
from fute_kit.options import validate_options
from fute_kit.testing import check_metric
from fute_kit_metrics.cosine import CosineMetric, save_reference_mean


def test_hand_computed_values() -> None:
    arrays = [np.array([1.0, 0, 0]), np.array([1.0, 1, 0]), np.array([-1.0, 0, 0]), np.array([0.0, 3, 4])]
    s = 1 / np.sqrt(2)
    expected = np.array(
        [
            [1, s, -1, 0],
            [s, 1, -s, 3 / (np.sqrt(2) * 5)],
            [-1, -s, 1, 0],
            [0, 3 / (np.sqrt(2) * 5), 0, 1],
        ]
    )
    np.testing.assert_allclose(CosineMetric().matrix(arrays), expected, atol=1e-15)
    # Matrices are flattened: [[3, 4]] vs [[4, 3]] is 24/25.
    assert CosineMetric().matrix([np.array([[3.0, 4.0]]), np.array([[4.0, 3.0]])])[0, 1] == pytest.approx(0.96)


def test_mean_pooling_compares_the_mean_row() -> None:
    # Two prompts whose rows are permuted copies: as matrices they differ, their means are the same.
    a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = a[[2, 0, 1]]
    assert CosineMetric().matrix([a, b])[0, 1] < 0.9
    assert CosineMetric(pool="mean").matrix([a, b])[0, 1] == pytest.approx(1.0)
    # Vectors pass through unchanged, and the mean is what is compared: [2/3, 2/3] vs [1, 0].
    assert CosineMetric(pool="mean").matrix([a, np.array([[1.0, 0.0]])])[0, 1] == pytest.approx(1 / np.sqrt(2))


def test_component_normalisation_removes_per_row_scale() -> None:
    rng = np.random.default_rng(0)
    original = rng.normal(size=(4, 16))
    other = rng.normal(size=(4, 16))
    # Model-side TaskEmb Fisher is orders of magnitude smaller, and differently so per layer.
    scaled = original * np.array([1e-4, 10.0, 3.0, 2e-3])[:, None]
    plain = CosineMetric().matrix([original, scaled, other])
    assert plain[0, 1] < 0.9
    per_row = CosineMetric(normalize="component").matrix([original, scaled, other])
    assert per_row[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert per_row[0, 2] == pytest.approx(per_row[1, 2], abs=1e-12)


def _saturated_groups() -> list[np.ndarray]:
    # A large shared offset (as in tuned prompts) plus one of two group directions and a little noise.
    rng = np.random.default_rng(1)
    shared = rng.normal(size=64)
    shared *= 10 / np.linalg.norm(shared)
    directions = rng.normal(size=(2, 64))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return [shared + directions[i % 2] + 0.05 * rng.normal(size=64) for i in range(8)]


def test_collection_centring_separates_planted_groups() -> None:
    arrays = _saturated_groups()
    raw = CosineMetric().matrix(arrays)
    assert raw[~np.eye(8, dtype=bool)].min() > 0.97
    centred = CosineMetric(center="collection").matrix(arrays)
    group = np.arange(8) % 2
    same = group[:, None] == group[None, :]
    off = ~np.eye(8, dtype=bool)
    assert centred[same & off].min() > 0
    assert centred[~same].max() < 0


def test_collection_centring_needs_three_items() -> None:
    with pytest.raises(DataError, match="at least 3"):
        CosineMetric(center="collection").matrix([np.ones(3), np.arange(3.0)])


def _task2vec_direct(a: np.ndarray, b: np.ndarray, eps: float) -> float:
    pa, pb = a / (a + b + eps), b / (a + b + eps)
    return float(pa @ pb / (np.linalg.norm(pa) * np.linalg.norm(pb)))


def test_task2vec_matches_direct_formula() -> None:
    rng = np.random.default_rng(2)
    arrays = [rng.gamma(0.5, size=(3, 20)) for _ in range(4)]
    matrix = CosineMetric(normalize="task2vec").matrix(arrays)
    for i in range(4):
        for j in range(4):
            a, b = arrays[i].ravel(), arrays[j].ravel()
            assert matrix[i, j] == pytest.approx(_task2vec_direct(a, b, 1e-12), abs=1e-9)
            # Task2Vec's own epsilon (1e-8) is negligible at this scale.
            assert matrix[i, j] == pytest.approx(_task2vec_direct(a, b, 1e-8), abs=1e-6)
    assert np.all(np.diag(matrix) == pytest.approx(1.0))
    # Scaling both vectors together leaves it unchanged, even at model-side Fisher magnitudes.
    tiny = CosineMetric(normalize="task2vec").matrix([a * 1e-12 for a in arrays])
    np.testing.assert_allclose(tiny, matrix, atol=1e-12)


def test_task2vec_rejects_negative_values() -> None:
    with pytest.raises(DataError, match=r"non-negative.*embedding 1"):
        CosineMetric(normalize="task2vec").matrix([np.ones(4), np.array([1.0, -1, 1, 1])])


@pytest.mark.parametrize("normalize", ["none", "component", "task2vec"])
def test_zero_vector_gives_zero(normalize: str) -> None:
    arrays = [np.zeros((2, 3)), np.ones((2, 3)), np.arange(6.0).reshape(2, 3)]
    matrix = CosineMetric(normalize=normalize).matrix(arrays)
    assert np.all(np.isfinite(matrix))
    assert np.all(matrix[0] == 0) and np.all(matrix[:, 0] == 0)
    assert matrix[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
@pytest.mark.parametrize("normalize", ["none", "component"])
def test_reference_mean_round_trip(tmp_path: Path, suffix: str, normalize: str) -> None:
    arrays = [a.reshape(4, 16) for a in _saturated_groups()]
    path = tmp_path / f"mean{suffix}"
    mean = save_reference_mean(path, arrays, normalize=normalize)
    assert mean.shape == (64,)
    from_file = CosineMetric(normalize=normalize, center="reference", reference=str(path)).matrix(arrays)
    in_place = CosineMetric(normalize=normalize, center="collection").matrix(arrays)
    np.testing.assert_allclose(from_file, in_place, atol=1e-12)
    # A stored mean also centres a collection too small to centre by itself.
    assert CosineMetric(center="reference", reference=str(path)).matrix(arrays[:2]).shape == (2, 2)


def test_reference_of_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "mean.npy"
    np.save(path, np.zeros(5))
    metric = CosineMetric(center="reference", reference=str(path))
    with pytest.raises(DataError, match=r"mean.npy.*\(5,\).*\(4, 16\)"):
        metric.matrix([np.ones((4, 16))] * 3)


def test_bad_options_name_the_key(tmp_path: Path) -> None:
    def problems(options: dict) -> str:
        with pytest.raises(OptionsError) as info:
            validate_options(CosineMetric, options, "metric 'cosine'")
        return str(info.value)

    assert "normalize" in problems({"normalize": "layer"})
    assert "center" in problems({"center": "mean"})
    assert "did you mean center" in problems({"centre": "collection"})
    assert "reference" in problems({"center": "reference"})
    assert "does not exist" in problems({"center": "reference", "reference": str(tmp_path / "missing.npy")})
    assert "reference" in problems({"reference": str(tmp_path / "x.npy")})
    assert "task2vec" in problems({"normalize": "task2vec", "center": "collection"})


def test_mismatched_sizes_rejected() -> None:
    with pytest.raises(DataError, match=r"differ in size.*\(3,\).*\(4,\)"):
        CosineMetric().matrix([np.ones(3), np.ones(4)])


COMBINATIONS = [
    (normalize, center)
    for normalize in ("none", "component", "task2vec")
    for center in ("none", "collection", "reference")
    if not (normalize == "task2vec" and center != "none")
]


@pytest.mark.parametrize(("normalize", "center"), COMBINATIONS)
def test_conformance(tmp_path: Path, normalize: str, center: str) -> None:
    rng = np.random.default_rng(3)
    arrays = [np.abs(rng.normal(size=(4, 8))) for _ in range(5)]
    options: dict = {"normalize": normalize, "center": center}
    if center == "reference":
        save_reference_mean(tmp_path / "mean.npy", arrays, normalize)
        options["reference"] = str(tmp_path / "mean.npy")
    metric = CosineMetric(**options)
    check_metric(metric, arrays)
    if normalize != "task2vec":
        check_metric(metric)


def test_registered_and_built_by_name(fute_registry, tmp_path: Path) -> None:
    registry = fute_registry(fute_kit_metrics)
    assert {"cosine", "cka"} <= set(registry.names("metric"))
    arrays = _saturated_groups()
    metric = registry.build("metric", "cosine", {"normalize": "component", "center": "collection"})
    assert isinstance(metric, CosineMetric)
    np.testing.assert_allclose(metric.matrix(arrays), CosineMetric("component", "collection").matrix(arrays))
    with pytest.raises(OptionsError, match="normalize"):
        registry.build("metric", "cosine", {"normalize": "l2"})
