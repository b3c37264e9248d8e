"""AuC of the ab error ("raw accuracy" of Zhang et al., ECCV 2016), plain and class-rebalanced.

For every pixel, ``d = ||ab_pred - ab_gt||_2`` in CIELAB units, with both images
converted from uint8 sRGB to Lab (D65). The cumulative curve is
``F(t) = sum_p w_p [d_p <= t] / sum_p w_p`` for the 151 integer thresholds
``t = 0, 1, ..., 150``; the AuC is its **mean over the 151 thresholds**
(a left Riemann sum over [0, 151) divided by 151), so it lies in [0, 1]:
1 for a perfect prediction, ``(151 - k) / 151`` for a prediction off by exactly
``k`` ab units everywhere (integer ``k <= 150``).

* ``auc``: every pixel weighs 1.
* ``auc_rebal``: a pixel weighs ``w[q]`` where ``q`` is the nearest of the 313 ab
  bins (grid 10) to its *ground-truth* colour and ``w`` is the ECCV16 rebalancing
  weight with ``lambda = 0`` ("re-weighting the pixels inversely by color class
  probability (Equation 4, setting lambda = 0)"): ``w ∝ 1 / p~`` with ``p~`` the
  class prior smoothed by a Gaussian of sigma 5 over the bin centres. The prior is
  the released ImageNet one by default, or one computed on a named dataset.

Over a dataset the counts are pooled over pixels (the ratio of sums), which for
images of one size equals the mean of the per-image curves.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

from ..color import NUM_AB_BINS, ab_centers, encode_ab, imagenet_prior, rebalance_weights, rgb_to_lab
from . import EvalBatch, Metric, register_metric

log = logging.getLogger(__name__)

MAX_THRESHOLD = 150
THRESHOLDS = np.arange(MAX_THRESHOLD + 1, dtype=np.float64)  # 0, 1, ..., 150 ab units
N_THRESHOLDS = THRESHOLDS.size  # 151
_NCOL = N_THRESHOLDS + 1  # per-image row: 151 cumulative weighted counts, then the total weight

_GRID = 10.0
_GRID_HALF = 20  # the lookup grid spans [-200, 200] in a and b; its border holds no bin
_GRID_N = 2 * _GRID_HALF + 1


# -----------------------------------------------------------------------------
# pure functions
# -----------------------------------------------------------------------------
def ab_distance(pred_ab: torch.Tensor, gt_ab: torch.Tensor) -> torch.Tensor:
    """Per-pixel Euclidean distance in ab. ``(N, 2, H, W)`` each (Lab units) -> ``(N, H, W)``."""
    diff = pred_ab - gt_ab
    return torch.sqrt(diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1])


def cumulative_counts(dist: torch.Tensor, weights: Optional[torch.Tensor] = None) -> np.ndarray:
    """Per-image cumulative (weighted) pixel counts of ``dist <= t`` for t = 0..150.

    Args:
        dist: ``(N, H, W)`` distances in ab units (>= 0).
        weights: ``(N, H, W)`` non-negative pixel weights, or None for 1.

    Returns:
        float64 ``(N, 152)``: columns 0..150 hold ``sum_p w_p [d_p <= t]``, column 151
        the total weight ``sum_p w_p``.
    """
    n = dist.shape[0]
    # d <= t (t integer)  <=>  ceil(d) <= t ; distances above 150 go to bin 151 (never counted)
    k = torch.ceil(dist.reshape(n, -1)).clamp_(0, N_THRESHOLDS).long()
    k += torch.arange(n, dtype=torch.long).view(n, 1) * _NCOL
    w = None if weights is None else weights.reshape(n, -1).double().flatten()
    hist = torch.bincount(k.flatten(), weights=w, minlength=n * _NCOL).double().view(n, _NCOL)
    out = torch.empty_like(hist)
    out[:, :N_THRESHOLDS] = hist[:, :N_THRESHOLDS].cumsum(1)
    out[:, N_THRESHOLDS] = hist.sum(1)
    return out.numpy()


def curve_from_counts(rows: np.ndarray) -> np.ndarray:
    """Pooled cumulative curve ``F(t)`` (151,) in [0, 1] from per-image rows ``(N, 152)``."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, _NCOL)
    total = rows[:, N_THRESHOLDS].sum()
    if total <= 0:
        return np.full(N_THRESHOLDS, np.nan)
    return rows[:, :N_THRESHOLDS].sum(0) / total


def auc_from_counts(rows: np.ndarray) -> float:
    """AuC in [0, 1]: the mean of the pooled curve over the 151 thresholds."""
    return float(np.mean(curve_from_counts(rows)))


@functools.lru_cache(maxsize=1)
def _grid_table() -> torch.Tensor:
    """Flat ``(41 * 41,)`` int64: the 313-bin index of each point of the step-10 grid on [-200, 200]^2, or -1."""
    table = torch.full((_GRID_N, _GRID_N), -1, dtype=torch.long)
    ij = torch.from_numpy(np.rint(ab_centers() / _GRID).astype(np.int64) + _GRID_HALF)
    table[ij[:, 0], ij[:, 1]] = torch.arange(NUM_AB_BINS)
    return table.flatten()


def ab_bins(ab: torch.Tensor) -> torch.Tensor:
    """Nearest of the 313 ab bins, ``(N, 2, H, W)`` -> ``(N, H, W)`` int64 in [0, 312].

    Same result as :func:`colorbench.color.encode_ab` (up to exact ties), much faster:
    the bins are the in-gamut points of a grid of step 10, so a pixel whose nearest
    grid point is a bin takes that bin; only the others (rare) run the full search.
    """
    q = torch.round(ab.float() * (1.0 / _GRID)).long().add_(_GRID_HALF).clamp_(0, _GRID_N - 1)
    out = _grid_table()[q[:, 0] * _GRID_N + q[:, 1]]  # clamped points land on the border: -1
    miss = out < 0
    if bool(miss.any()):
        pix = ab.float().permute(0, 2, 3, 1)[miss]  # (P, 2)
        out[miss] = encode_ab(pix.t().reshape(1, 2, -1, 1)).flatten()
    return out


def class_weights(prior: Optional[np.ndarray] = None, sigma: float = 5.0) -> np.ndarray:
    """ECCV16 rebalancing weights with lambda = 0: ``w ∝ 1 / p~`` (313,), normalised to ``E_p[w] = 1``.

    ``p~`` is ``prior`` (default: the released ImageNet prior) smoothed by a Gaussian of
    ``sigma`` ab units. Bins whose smoothed probability underflows to 0 (possible for a
    prior computed on a small dataset) get the largest finite weight.
    """
    with np.errstate(divide="ignore"):
        w = rebalance_weights(prior, lam=0.0, sigma=sigma)
    bad = ~np.isfinite(w)
    if bad.any():
        log.warning("%d of 313 ab bins have zero smoothed prior; giving them the largest finite weight", bad.sum())
        w = np.where(bad, w[~bad].max(), w)
    return w


def _as_batch(rgb: np.ndarray) -> torch.Tensor:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.shape[-1] != 3 or arr.ndim not in (3, 4):
        raise ValueError(f"expected uint8 (H, W, 3) or (N, H, W, 3), got {arr.dtype} {arr.shape}")
    if arr.ndim == 3:
        arr = arr[None]
    arr = np.ascontiguousarray(arr)
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


def ab_error_counts(pred_rgb: np.ndarray, gt_rgb: np.ndarray, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-image rows ``(N, 152)`` of :func:`cumulative_counts` for uint8 sRGB images.

    Args:
        pred_rgb, gt_rgb: uint8 ``(N, H, W, 3)`` (or one ``(H, W, 3)`` image).
        weights: None (every pixel 1) or ``(313,)`` class weights looked up at the
            ground truth's nearest ab bin.
    """
    p_ab = rgb_to_lab(_as_batch(pred_rgb))[:, 1:]
    g_ab = rgb_to_lab(_as_batch(gt_rgb))[:, 1:]
    w = None
    if weights is not None:
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))[ab_bins(g_ab)]
    return cumulative_counts(ab_distance(p_ab, g_ab), w)


def auc(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image AuC of the ab error, ``(N,)`` in [0, 1] (higher is better).

    ``pred_rgb``, ``gt_rgb``: uint8 ``(N, H, W, 3)`` or ``(H, W, 3)`` sRGB.
    """
    rows = ab_error_counts(pred_rgb, gt_rgb)
    return np.array([auc_from_counts(r) for r in rows])


def auc_rebal(pred_rgb: np.ndarray, gt_rgb: np.ndarray, prior: Optional[np.ndarray] = None) -> np.ndarray:
    """Per-image class-rebalanced AuC, ``(N,)`` in [0, 1] (higher is better).

    Pixels weigh :func:`class_weights` ``(prior)`` of their ground-truth ab bin.
    """
    rows = ab_error_counts(pred_rgb, gt_rgb, class_weights(prior))
    return np.array([auc_from_counts(r) for r in rows])


def dataset_prior(name: str, **dataset_kwargs: Any) -> np.ndarray:
    """Empirical 313-bin prior ``(313,)`` of the ground-truth ab over a named dataset (sums to 1).

    Images are used at their stored size; nothing is smoothed here (the weights smooth).
    """
    from tqdm import tqdm

    from ..data import load_dataset

    ds = load_dataset(name, **dataset_kwargs)
    counts = np.zeros(NUM_AB_BINS, dtype=np.float64)
    for item in tqdm(ds, desc=f"ab prior of {name}", unit="img", disable=None):
        ab = rgb_to_lab(_as_batch(item.rgb))[:, 1:]
        counts += np.bincount(ab_bins(ab).flatten().numpy(), minlength=NUM_AB_BINS)
    if counts.sum() == 0:
        raise ValueError(f"dataset {name} has no pixels to estimate a prior from")
    return counts / counts.sum()


# -----------------------------------------------------------------------------
# accumulators
# -----------------------------------------------------------------------------
class _AbAucBase(Metric):
    """Rows ``(N, 152)``: 151 cumulative weighted counts and the total weight; value = pooled AuC."""

    version = "1"

    def _pixel_weights(self, batch: EvalBatch) -> Optional[torch.Tensor]:
        return None

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        dist = batch.cached("ab_dist", lambda: ab_distance(batch.lab("pred")[:, 1:], batch.lab("gt")[:, 1:]))
        return cumulative_counts(dist, self._pixel_weights(batch))

    def aggregate(self, stats: np.ndarray) -> float:
        return auc_from_counts(stats)

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        return {
            "curve": [float(v) for v in curve_from_counts(stats)],
            "thresholds": [float(t) for t in THRESHOLDS],
        }


@register_metric(higher_is_better=True)
class Auc(_AbAucBase):
    name = "auc"
    definition = (
        "AuC of the ab error (ECCV16 raw accuracy, non-rebalanced): per pixel d = ||ab_pred - ab_gt||_2 "
        "(CIELAB D65 from uint8 sRGB); F(t) = fraction of pixels (pooled over images) with d <= t for "
        "t = 0..150; value = mean of the 151 F(t), in [0, 1]."
    )


@register_metric(higher_is_better=True)
class AucRebal(_AbAucBase):
    """Class-rebalanced AuC.

    Args:
        prior: ``"imagenet"`` (the released ImageNet 313-bin prior), the name of a
            dataset to estimate it on (see :func:`dataset_prior`), or a ``(313,)`` array.
        prior_name: how to record an array prior in the results.
        sigma: Gaussian smoothing of the prior in ab units (ECCV16: 5).
    """

    name = "auc_rebal"
    definition = (
        "Class-rebalanced AuC of the ab error (ECCV16 'rebal'): as auc, but each pixel weighs "
        "w[q] with q its ground-truth nearest 313-bin ab class and w ∝ 1/p~ (ECCV16 Eq. 4 with lambda = 0; "
        "p~ = class prior smoothed with a Gaussian of sigma 5); F(t) = weighted fraction with d <= t, "
        "t = 0..150; value = mean of the 151 F(t), in [0, 1]."
    )

    def __init__(self, prior: Union[str, np.ndarray] = "imagenet", prior_name: Optional[str] = None,
                 sigma: float = 5.0) -> None:
        if isinstance(prior, str):
            self.prior_name = "imagenet (released prior_probs.npy)" if prior == "imagenet" else f"dataset:{prior}"
            p = imagenet_prior() if prior == "imagenet" else dataset_prior(prior)
        else:
            p = np.asarray(prior, dtype=np.float64)
            if p.shape != (NUM_AB_BINS,) or (p < 0).any() or p.sum() <= 0:
                raise ValueError(f"prior must be a non-negative (313,) array, got shape {p.shape}")
            self.prior_name = prior_name or "custom"
        self.sigma = float(sigma)
        self.weights = class_weights(p, sigma=self.sigma)
        self._weights_t = torch.from_numpy(self.weights)
        super().__init__()

    def _pixel_weights(self, batch: EvalBatch) -> torch.Tensor:
        bins = batch.cached("ab_bins:gt", lambda: ab_bins(batch.lab("gt")[:, 1:]))
        return self._weights_t[bins]

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        return {**super().extra(stats), "prior": self.prior_name, "prior_sigma": self.sigma}


__all__ = ["THRESHOLDS", "ab_distance", "cumulative_counts", "curve_from_counts", "auc_from_counts", "ab_bins",
           "class_weights", "ab_error_counts", "auc", "auc_rebal", "dataset_prior", "Auc", "AucRebal"]
