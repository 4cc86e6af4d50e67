"""fute_kit plugin: the ``cosine`` and ``cka`` similarity metrics (numpy only)."""

from __future__ import annotations

from typing import Any

from fute_kit.plugin import hookimpl
from fute_kit_metrics.cka import CKAMetric, linear_cka, rbf_cka
from fute_kit_metrics.cosine import CosineMetric, save_reference_mean

__all__ = ["CKAMetric", "CosineMetric", "linear_cka", "rbf_cka", "register_metrics", "save_reference_mean"]


@hookimpl
def register_metrics(register: Any) -> None:
    register(CosineMetric)
    register(CKAMetric)
