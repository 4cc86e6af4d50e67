"""CKA: reference values from methods.md §5, invariants, the d >> n bias, errors and registration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fute_kit_metrics
from fute_kit.errors import DataError, OptionsError
from fute_kit.testing import check_metric
from fute_kit_metrics.cka import CKAMetric, linear_cka, rbf_cka


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    # The reference draw of methods.md §5 (legacy global seed, X then Y).
    np.random.seed(1337)
    x = np.random.randn(100, 10)
    y = np.random.randn(100, 10) + x
    return x, y


def test_reference_values(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert round(linear_cka(x, y), 5) == 0.55761
    assert round(linear_cka(x, y, debiased=True), 5) == 0.51346
    assert round(rbf_cka(x, y, threshold=0.5), 5) == 0.65483


def test_metric_matches_functions(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert CKAMetric().matrix([x, y])[0, 1] == pytest.approx(0.557613, abs=1e-6)
    assert CKAMetric(debiased=True).matrix([x, y])[0, 1] == pytest.approx(0.513456, abs=1e-6)
    assert CKAMetric(kernel="rbf").matrix([x, y])[0, 1] == pytest.approx(0.654831, abs=1e-6)


def _rv(x: np.ndarray, y: np.ndarray) -> float:
    # RV coefficient (Robert & Escoufier 1976) from the cross-covariance blocks.
    x, y = x - x.mean(0), y - y.mean(0)
    sxy, sxx, syy = x.T @ y, x.T @ x, y.T @ y
    return float(np.trace(sxy @ sxy.T) / np.sqrt(np.trace(sxx @ sxx) * np.trace(syy @ syy)))


VARIANTS = [("linear", False), ("linear", True), ("rbf", False), ("rbf", True)]


@pytest.mark.parametrize(("kernel", "debiased"), VARIANTS)
def test_invariants(xy: tuple[np.ndarray, np.ndarray], kernel: str, debiased: bool) -> None:
    x, y = xy
    metric = CKAMetric(kernel=kernel, debiased=debiased)
    base = metric.matrix([x, y])[0, 1]
    assert metric.matrix([x, x])[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert metric.matrix([y, x])[0, 1] == pytest.approx(base, abs=1e-12)
    q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(10, 10)))
    for transformed in (x @ q, 3.7 * x, x + 5.0, 0.01 * (x @ q) - 2.0):
        assert metric.matrix([transformed, y])[0, 1] == pytest.approx(base, abs=1e-9)


def test_linear_cka_is_rv_coefficient(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    assert linear_cka(x, y) == pytest.approx(_rv(x, y), abs=1e-12)
    wide = np.random.default_rng(4).normal(size=(100, 37))
    assert linear_cka(x, wide) == pytest.approx(_rv(x, wide), abs=1e-12)


def test_vectors_give_pearson_r_squared() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=200)
    y = 0.5 * x + rng.normal(size=200)
    r = np.corrcoef(x, y)[0, 1]
    assert linear_cka(x, y) == pytest.approx(r**2, abs=1e-12)
    assert linear_cka(x[:, None], y) == pytest.approx(r**2, abs=1e-12)


def test_bias_for_wide_independent_data() -> None:
    rng = np.random.default_rng(6)
    biased, debiased = {}, {}
    for d in (10, 1000):
        pairs = [(rng.normal(size=(50, d)), rng.normal(size=(50, d))) for _ in range(5)]
        biased[d] = np.mean([linear_cka(a, b) for a, b in pairs])
        debiased[d] = np.mean([linear_cka(a, b, debiased=True) for a, b in pairs])
    assert 0.12 < biased[10] < 0.3
    assert 0.92 < biased[1000] < 0.98
    assert abs(debiased[10]) < 0.05
    assert abs(debiased[1000]) < 0.05


def test_gram_and_feature_paths_agree() -> None:
    # n > d takes the X^T Y shortcut; adding a wide array forces the n x n Gram path.
    rng = np.random.default_rng(7)
    narrow = [rng.normal(size=(30, 4)) for _ in range(3)]
    narrow[1] += narrow[0]
    fast = CKAMetric().matrix(narrow)
    slow = CKAMetric().matrix([*narrow, rng.normal(size=(30, 60))])[:3, :3]
    np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_constant_input_gives_zero_not_nan() -> None:
    rng = np.random.default_rng(8)
    matrix = CKAMetric(kernel="rbf").matrix([np.ones((6, 3)), rng.normal(size=(6, 3))])
    assert np.all(np.isfinite(matrix))
    assert matrix[0, 1] == 0.0


def test_different_row_counts_name_both_shapes() -> None:
    with pytest.raises(DataError, match=r"\(5, 3\).*\(7, 3\)"):
        CKAMetric().matrix([np.ones((5, 3)), np.ones((7, 3))])
    with pytest.raises(DataError, match="at least 4 rows"):
        linear_cka(np.eye(3), np.eye(3), debiased=True)


@pytest.mark.parametrize(("kernel", "debiased"), VARIANTS)
def test_conformance(kernel: str, debiased: bool) -> None:
    check_metric(CKAMetric(kernel=kernel, debiased=debiased))
    rng = np.random.default_rng(9)
    arrays = [rng.normal(size=(12, 3)) for _ in range(5)]
    check_metric(CKAMetric(kernel=kernel, debiased=debiased, threshold=1.0), arrays)


def test_registered_and_built_by_name(fute_registry) -> None:
    registry = fute_registry(fute_kit_metrics)
    for kernel, debiased in itertools.product(("linear", "rbf"), (False, True)):
        metric = registry.build("metric", "cka", {"kernel": kernel, "debiased": debiased, "threshold": 0.8})
        assert isinstance(metric, CKAMetric)
        check_metric(metric)
    with pytest.raises(OptionsError, match="kernel"):
        registry.build("metric", "cka", {"kernel": "poly"})
    with pytest.raises(OptionsError, match="threshold"):
        registry.build("metric", "cka", {"kernel": "rbf", "threshold": -1.0})
    with pytest.raises(OptionsError, match="debias"):
        registry.build("metric", "cka", {"debias": True})
