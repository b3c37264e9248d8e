"""Metrics: a pure function per metric plus a batched accumulator, behind one registry.

Every accumulator keeps *per-image statistics* (a row of numbers per image) and
an ``aggregate(stats) -> float`` that turns any subset of rows into the metric
value. The value over the dataset and its bootstrap confidence interval over
images therefore come from the same code: resample rows, aggregate.

Add a metric as one module in this folder with a ``@register_metric`` class and
list the module in ``_MODULES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    import torch

from ..registry import Registry

_MODULES = [
    "colorbench.metrics.ab_auc",
    "colorbench.metrics.fidelity",
    "colorbench.metrics.lpips_metric",
    "colorbench.metrics.classifier",
    "colorbench.metrics.colorfulness",
]

METRICS = Registry("metric", _MODULES)


class MetricUnavailable(RuntimeError):
    """The metric cannot run here (e.g. its network weights are not downloadable)."""


@dataclass
class EvalBatch:
    """What a metric sees for a batch of images (all at the evaluation size).

    Attributes:
        ids: item ids.
        pred_rgb: uint8 ``(N, H, W, 3)`` colorizations.
        gt_rgb: uint8 ``(N, H, W, 3)`` ground truth colour images.
        labels: ImageNet class index per image, or None.

    Derived arrays (torch views, Lab, LUV, ...) are computed once per batch through
    :meth:`cached` and shared by every metric that updates on it.
    """

    ids: List[str]
    pred_rgb: np.ndarray
    gt_rgb: np.ndarray
    labels: List[Optional[int]] = field(default_factory=list)
    _cache: Dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def cached(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per batch and shared by every metric that asks for ``key``."""
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def rgb_t(self, which: str) -> "torch.Tensor":
        """``which`` in {"pred", "gt"}: uint8 torch tensor ``(N, 3, H, W)`` (a view when possible)."""

        def make() -> "torch.Tensor":
            import torch

            arr = np.ascontiguousarray({"pred": self.pred_rgb, "gt": self.gt_rgb}[which])
            if not arr.flags.writeable:  # torch warns on read-only memory; metrics never write
                arr = arr.copy()
            return torch.from_numpy(arr).permute(0, 3, 1, 2)

        return self.cached(f"rgb:{which}", make)

    def lab(self, which: str) -> "torch.Tensor":
        """CIELAB (D65) float32 ``(N, 3, H, W)``: ``L in [0, 100]``, ``a, b`` about ``[-110, 110]``."""
        from ..color import rgb_to_lab

        return self.cached(f"lab:{which}", lambda: rgb_to_lab(self.rgb_t(which)))

    def luv(self, which: str) -> "torch.Tensor":
        """CIELUV (D65) float32 ``(N, 3, H, W)``: ``L in [0, 100]``; ``u, v`` in the sRGB gamut range."""
        from ..color import rgb_to_luv

        return self.cached(f"luv:{which}", lambda: rgb_to_luv(self.rgb_t(which)))


@dataclass
class MetricResult:
    name: str
    value: Optional[float]
    ci: Optional[List[float]]
    per_image: Dict[str, float]
    higher_is_better: bool
    extra: Dict[str, Any] = field(default_factory=dict)
    missing: Optional[str] = None  # reason, when the metric could not be computed

    def to_json(self) -> Dict[str, Any]:
        out = {"value": self.value, "ci": self.ci, "higher_is_better": self.higher_is_better}
        if self.missing:
            out["missing"] = self.missing
        out.update(self.extra)
        return out


def bootstrap_ci(stats: np.ndarray, aggregate, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> List[float]:
    """Percentile bootstrap interval of ``aggregate(stats[idx])`` over rows (images)."""
    n = stats.shape[0]
    if n < 2:
        v = float(aggregate(stats))
        return [v, v]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    vals = np.array([aggregate(stats[i]) for i in idx], dtype=np.float64)
    vals = vals[np.isfinite(vals)]
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return [float(lo), float(hi)]


class Metric:
    """Base accumulator. Subclasses implement :meth:`image_stats` (and maybe :meth:`aggregate`)."""

    name: str = ""
    higher_is_better: bool = True
    version: str = "1"
    definition: str = ""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._ids: List[str] = []
        self._rows: List[np.ndarray] = []

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        """Per-image statistics ``(N, k)`` for a batch."""
        raise NotImplementedError

    def aggregate(self, stats: np.ndarray) -> float:
        """Metric value from per-image rows; default: mean of column 0."""
        return float(np.mean(stats[:, 0]))

    def per_image_value(self, row: np.ndarray) -> float:
        return float(self.aggregate(row[None]))

    def update(self, batch: EvalBatch) -> None:
        rows = np.asarray(self.image_stats(batch), dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[:, None]
        self._ids.extend(batch.ids)
        self._rows.extend(rows)

    def stats(self) -> np.ndarray:
        return np.stack(self._rows) if self._rows else np.zeros((0, 1))

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        """Anything else worth recording (curves, classifier used, ...)."""
        return {}

    def compute(self, n_boot: int = 1000, seed: int = 0) -> MetricResult:
        stats = self.stats()
        if stats.shape[0] == 0:
            raise ValueError(f"metric {self.name}: no images were added")
        return MetricResult(
            name=self.name,
            value=float(self.aggregate(stats)),
            ci=bootstrap_ci(stats, self.aggregate, n_boot=n_boot, seed=seed),
            per_image={i: self.per_image_value(r) for i, r in zip(self._ids, stats)},
            higher_is_better=self.higher_is_better,
            extra=self.extra(stats),
        )


def register_metric(cls=None, *, name: Optional[str] = None, higher_is_better: bool = True, **meta):
    """Class decorator: registers a :class:`Metric` subclass under ``name`` (default ``cls.name``)."""

    def deco(c):
        c.higher_is_better = higher_is_better
        key = name or c.name
        c.name = key
        METRICS.register(c, name=key, higher_is_better=higher_is_better, **meta)
        return c

    return deco(cls) if cls is not None else deco


def list_metrics() -> List[str]:
    return METRICS.names()


def create_metric(name: str, **kwargs: Any) -> Metric:
    return METRICS(name, **kwargs)


__all__ = ["METRICS", "Metric", "MetricResult", "MetricUnavailable", "EvalBatch", "register_metric",
           "list_metrics", "create_metric", "bootstrap_ci"]
