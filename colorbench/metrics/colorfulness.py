"""Colour statistics: colorfulness (Hasler and Suesstrunk 2003), saturation difference, Acc(U)/Acc(V).

* ``colorfulness``: on uint8 sRGB values ``R, G, B in [0, 255]``, ``rg = R - G``,
  ``yb = (R + G)/2 - B``; ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)``
  over the image's pixels (population standard deviations). Reported for the
  prediction (mean over images); the ground truth's mean is recorded as
  ``gt_colorfulness`` beside it. Higher is "more colourful", not necessarily better;
  it is registered as higher-is-better as in the papers that report it.
* ``sat_diff``: HSV saturation ``S = (max - min) / max`` (0 where ``max = 0``; as
  ``skimage.color.rgb2hsv``), per image the mean over pixels of
  ``|S_pred - S_gt|`` in [0, 1]; mean over images; lower is better.
* ``acc_u``, ``acc_v`` (Hwang and Zhou): CIELUV (D65) ``u`` (resp. ``v``) of both
  images is quantized into 50 equal bins over the sRGB gamut range
  :data:`U_RANGE` (resp. :data:`V_RANGE`); per image the fraction of pixels whose
  predicted bin equals the ground truth's bin; mean over images.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np
import torch

from ..color import rgb_to_luv
from . import EvalBatch, Metric, register_metric

#: range of CIELUV u and v over all 2^24 uint8 sRGB colours (D65, scikit-image's formulas), rounded
#: outward to 0.01: u from pure green (-83.078) to pure red (175.014), v from (112, 0, 255) (-134.098)
#: to pure green (107.399).
U_RANGE: Tuple[float, float] = (-83.08, 175.02)
V_RANGE: Tuple[float, float] = (-134.10, 107.40)
N_UV_BINS = 50


def _as_batch(rgb: np.ndarray) -> torch.Tensor:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.shape[-1] != 3 or arr.ndim not in (3, 4):
        raise ValueError(f"expected uint8 (H, W, 3) or (N, H, W, 3), got {arr.dtype} {arr.shape}")
    arr = np.array(arr[None] if arr.ndim == 3 else arr, copy=True)
    return torch.from_numpy(arr).permute(0, 3, 1, 2)


# -----------------------------------------------------------------------------
# torch, uint8 (N, 3, H, W)
# -----------------------------------------------------------------------------
def colorfulness_t(rgb: torch.Tensor) -> torch.Tensor:
    """Hasler-Suesstrunk colorfulness per image, float64 ``(N,)`` (>= 0; typical photos 20-110).

    ``rg = R - G`` and ``2 yb = R + G - 2B`` are integers, so their sums and sums of squares
    are exact (int64) and the moments carry no accumulated rounding.
    """
    x = rgb.to(torch.int32)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    n = float(r[0].numel())

    def moments(v: torch.Tensor, scale: float) -> Tuple[torch.Tensor, torch.Tensor]:
        s1 = v.sum(dim=(1, 2), dtype=torch.int64).double() / (n * scale)
        s2 = (v * v).sum(dim=(1, 2), dtype=torch.int64).double() / (n * scale * scale)
        return (s2 - s1 * s1).clamp_(min=0.0), s1  # population variance, mean

    var_rg, m_rg = moments(r - g, 1.0)
    var_yb, m_yb = moments(r + g - 2 * b, 2.0)
    return torch.sqrt(var_rg + var_yb) + 0.3 * torch.sqrt(m_rg * m_rg + m_yb * m_yb)


def saturation_t(rgb: torch.Tensor) -> torch.Tensor:
    """HSV saturation ``(N, H, W)`` float32 in [0, 1] (0 for black), as ``skimage.color.rgb2hsv``."""
    mx = rgb.amax(1).float()
    mn = rgb.amin(1).float()
    return torch.where(mx > 0, (mx - mn) / mx.clamp(min=1.0), torch.zeros_like(mx))


def sat_diff_t(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per-image mean ``|S_pred - S_gt|`` (HSV saturation), float64 ``(N,)`` in [0, 1]."""
    return (saturation_t(pred) - saturation_t(gt)).abs().flatten(1).mean(1, dtype=torch.float64)


def uv_bins(values: torch.Tensor, value_range: Tuple[float, float], n_bins: int = N_UV_BINS) -> torch.Tensor:
    """Equal-width bin index in ``[0, n_bins - 1]`` of ``values`` over ``value_range`` (clamped), int64."""
    lo, hi = value_range
    return torch.floor((values - lo) * (n_bins / (hi - lo))).clamp_(0, n_bins - 1).long()


def uv_accuracy_t(pred_luv: torch.Tensor, gt_luv: torch.Tensor, channel: int) -> torch.Tensor:
    """Per-image fraction of pixels with the same 50-bin ``u`` (channel 1) or ``v`` (channel 2) bin.

    Inputs CIELUV ``(N, 3, H, W)``; returns float64 ``(N,)`` in [0, 1].
    """
    rng = {1: U_RANGE, 2: V_RANGE}[channel]
    same = uv_bins(pred_luv[:, channel], rng) == uv_bins(gt_luv[:, channel], rng)
    return same.flatten(1).double().mean(1)


# -----------------------------------------------------------------------------
# numpy, uint8 (N, H, W, 3) or (H, W, 3)
# -----------------------------------------------------------------------------
def colorfulness(rgb: np.ndarray) -> np.ndarray:
    """Hasler-Suesstrunk colorfulness ``(N,)`` of uint8 sRGB images."""
    return colorfulness_t(_as_batch(rgb)).numpy()


def sat_diff(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image mean absolute HSV-saturation difference ``(N,)`` in [0, 1] (lower is better)."""
    return sat_diff_t(_as_batch(pred_rgb), _as_batch(gt_rgb)).numpy()


def acc_u(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image Acc(U) ``(N,)`` in [0, 1]: same 50-bin CIELUV u as the ground truth."""
    return uv_accuracy_t(rgb_to_luv(_as_batch(pred_rgb)), rgb_to_luv(_as_batch(gt_rgb)), 1).numpy()


def acc_v(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image Acc(V) ``(N,)`` in [0, 1]: same 50-bin CIELUV v as the ground truth."""
    return uv_accuracy_t(rgb_to_luv(_as_batch(pred_rgb)), rgb_to_luv(_as_batch(gt_rgb)), 2).numpy()


# -----------------------------------------------------------------------------
# accumulators
# -----------------------------------------------------------------------------
@register_metric(higher_is_better=True)
class Colorfulness(Metric):
    """Rows ``(N, 2)``: ``[M_pred, M_gt]``; value = mean of ``M_pred``."""

    name = "colorfulness"
    version = "1"
    definition = (
        "Hasler-Suesstrunk (2003) colorfulness of the prediction on uint8 sRGB: rg = R-G, yb = (R+G)/2-B, "
        "M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2) (population std over pixels); "
        "mean over images. 'gt_colorfulness' is the same for the ground truth."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        pred = batch.cached("colorfulness:pred", lambda: colorfulness_t(batch.rgb_t("pred")))
        gt = batch.cached("colorfulness:gt", lambda: colorfulness_t(batch.rgb_t("gt")))
        return torch.stack((pred, gt), 1).numpy()

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        return {"gt_colorfulness": float(np.mean(stats[:, 1]))}


@register_metric(higher_is_better=False)
class SatDiff(Metric):
    name = "sat_diff"
    version = "1"
    definition = (
        "Saturation difference: per image the mean over pixels of |S_pred - S_gt|, S = HSV saturation "
        "(max-min)/max of uint8 sRGB (0 for black), in [0, 1]; mean over images. Lower is better."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return sat_diff_t(batch.rgb_t("pred"), batch.rgb_t("gt")).numpy()[:, None]


class _UvAccuracy(Metric):
    version = "1"
    channel = 1

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return uv_accuracy_t(batch.luv("pred"), batch.luv("gt"), self.channel).numpy()[:, None]


@register_metric(higher_is_better=True)
class AccU(_UvAccuracy):
    name = "acc_u"
    channel = 1
    definition = (
        f"Acc(U) (Hwang and Zhou): fraction of pixels whose CIELUV u (D65) falls in the same of {N_UV_BINS} equal "
        f"bins over the sRGB gamut range u in [{U_RANGE[0]}, {U_RANGE[1]}] as the ground truth's; mean over images."
    )


@register_metric(higher_is_better=True)
class AccV(_UvAccuracy):
    name = "acc_v"
    channel = 2
    definition = (
        f"Acc(V) (Hwang and Zhou): fraction of pixels whose CIELUV v (D65) falls in the same of {N_UV_BINS} equal "
        f"bins over the sRGB gamut range v in [{V_RANGE[0]}, {V_RANGE[1]}] as the ground truth's; mean over images."
    )


__all__ = ["U_RANGE", "V_RANGE", "N_UV_BINS", "colorfulness", "sat_diff", "acc_u", "acc_v", "colorfulness_t",
           "saturation_t", "sat_diff_t", "uv_bins", "uv_accuracy_t", "Colorfulness", "SatDiff", "AccU", "AccV"]
