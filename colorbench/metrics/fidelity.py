"""Pixel fidelity on uint8 sRGB: MSE, PSNR and SSIM (scikit-image's convention), batched in torch.

* ``mse``: mean over the ``H x W x 3`` values of ``(pred - gt)^2`` in uint8 units
  (range [0, 65025]); the dataset value is the mean over images.
* ``psnr``: ``10 log10(255^2 / MSE)`` dB per image, capped at :data:`PSNR_CAP_DB`
  (identical images would give +inf, which no table or JSON can average); the
  dataset value is the mean over images (the convention of the colorization papers).
* ``ssim``: exactly ``skimage.metrics.structural_similarity(gt, pred,
  channel_axis=-1, data_range=255)`` with its defaults: a 7x7 uniform window,
  sample covariance (``N/(N-1)``, N = 49), ``K1 = 0.01``, ``K2 = 0.03``, the mean of
  the SSIM map after cropping 3 pixels at each border, averaged over the three
  channels. The moments are formed exactly in integers (see :func:`ssim_t`).
"""

from __future__ import annotations

import numpy as np
import torch

from . import EvalBatch, Metric, register_metric

DATA_RANGE = 255.0
PSNR_CAP_DB = 100.0
SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
_SSIM_CHUNK_PIXELS = 1 << 21  # images per SSIM chunk: about this many pixels (bounds memory)


def _as_batch(rgb: np.ndarray) -> torch.Tensor:
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.shape[-1] != 3 or arr.ndim not in (3, 4):
        raise ValueError(f"expected uint8 (H, W, 3) or (N, H, W, 3), got {arr.dtype} {arr.shape}")
    if arr.ndim == 3:
        arr = arr[None]
    if not arr.flags.writeable:
        arr = arr.copy()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)


def _check(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and ground truth {tuple(gt.shape)} differ in shape")


# -----------------------------------------------------------------------------
# SSIM: torch, channel-first uint8 (N, 3, H, W)
# -----------------------------------------------------------------------------
def _box_valid(x: torch.Tensor, k: int) -> torch.Tensor:
    """Sums over every full ``k x k`` window, ``(..., H, W)`` -> ``(..., H-k+1, W-k+1)``."""
    return x.unfold(-1, k, 1).sum(-1, dtype=x.dtype).unfold(-2, k, 1).sum(-1, dtype=x.dtype)


def ssim_t(pred: torch.Tensor, gt: torch.Tensor, win_size: int = SSIM_WIN) -> torch.Tensor:
    """Per-image mean SSIM, float64 ``(N,)`` in [-1, 1], as scikit-image computes it (see module doc).

    Inputs uint8 ``(N, C, H, W)`` with ``H, W >= win_size``; channels are averaged.

    With window sums ``Sx = sum x`` etc. over ``n = win_size^2`` pixels, scikit-image's
    ``ux = Sx/n``, ``vx = (Sxx/n - ux^2) n/(n-1)``, ``vxy = (Sxy/n - ux uy) n/(n-1)`` give
    ``SSIM = (2 Sx Sy + C1 n^2)(2 Axy + C2 n(n-1)) / ((Sx^2 + Sy^2 + C1 n^2)(Axx + Ayy + C2 n(n-1)))``
    with ``Axy = n Sxy - Sx Sy``. For uint8 data every ``S`` and ``A`` is an integer below
    2^31, computed exactly in int32, so no cancellation error enters; the rest is float32.
    """
    _check(pred, gt)
    n, c, h, w = pred.shape
    if min(h, w) < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}x{win_size}, got {h}x{w}")
    npix = win_size * win_size
    c1 = (SSIM_K1 * DATA_RANGE) ** 2 * npix * npix
    c2 = (SSIM_K2 * DATA_RANGE) ** 2 * npix * (npix - 1)
    out = torch.empty(n, dtype=torch.float64)
    step = max(1, _SSIM_CHUNK_PIXELS // (c * h * w))
    for s in range(0, n, step):
        x = pred[s : s + step].to(torch.int32, memory_format=torch.contiguous_format)
        y = gt[s : s + step].to(torch.int32, memory_format=torch.contiguous_format)
        sx, sy, sxx, syy, sxy = (_box_valid(v, win_size) for v in (x, y, x * x, y * y, x * y))
        pxy = sx * sy
        q = sx * sx + sy * sy
        num = (2 * pxy).float().add_(c1).mul_((2 * (npix * sxy - pxy)).float().add_(c2))
        den = q.float().add_(c1).mul_((npix * (sxx + syy) - q).float().add_(c2))
        out[s : s + step] = num.div_(den).flatten(1).mean(1, dtype=torch.float64)
    return out


# -----------------------------------------------------------------------------
# numpy, channel-last uint8 (N, H, W, 3) or (H, W, 3)
# -----------------------------------------------------------------------------
def mse(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image MSE, float64 ``(N,)`` in uint8 units (lower is better).

    uint8 ``(N, H, W, 3)`` or one ``(H, W, 3)`` image; the squared differences are summed
    exactly in integers.
    """
    p, g = np.asarray(pred_rgb), np.asarray(gt_rgb)
    if p.shape != g.shape or p.dtype != np.uint8 or g.dtype != np.uint8:
        raise ValueError(f"expected two uint8 arrays of one shape, got {p.dtype} {p.shape} and {g.dtype} {g.shape}")
    if p.ndim == 3:
        p, g = p[None], g[None]
    d = p.astype(np.int32) - g
    sq = np.square(d, out=d).reshape(len(d), -1)
    return sq.sum(1, dtype=np.int64) / float(sq.shape[1])


def psnr_from_mse(mse_values: np.ndarray) -> np.ndarray:
    """``10 log10(255^2 / mse)`` dB, float64, capped at ``PSNR_CAP_DB`` (identical images)."""
    m = np.asarray(mse_values, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(DATA_RANGE**2 / m), PSNR_CAP_DB)


def psnr(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image PSNR ``(N,)`` in dB, data range 255, capped at 100 dB (higher is better)."""
    return psnr_from_mse(mse(pred_rgb, gt_rgb))


def ssim(pred_rgb: np.ndarray, gt_rgb: np.ndarray) -> np.ndarray:
    """Per-image SSIM ``(N,)`` (higher is better), = skimage ``structural_similarity(gt, pred,
    channel_axis=-1, data_range=255)``."""
    return ssim_t(_as_batch(pred_rgb), _as_batch(gt_rgb)).numpy()


# -----------------------------------------------------------------------------
# accumulators (rows: one value per image; dataset value: mean over images)
# -----------------------------------------------------------------------------
@register_metric(higher_is_better=False)
class Mse(Metric):
    name = "mse"
    version = "1"
    definition = "MSE: mean over H x W x 3 of (pred - gt)^2 on uint8 sRGB (units: uint8 levels squared); mean over images."

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return batch.cached("mse", lambda: mse(batch.pred_rgb, batch.gt_rgb))[:, None]


@register_metric(higher_is_better=True)
class Psnr(Metric):
    name = "psnr"
    version = "1"
    definition = (
        f"PSNR: 10 log10(255^2 / MSE) dB per image on uint8 sRGB (data range 255), capped at {PSNR_CAP_DB:g} dB; "
        "mean over images."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return psnr_from_mse(batch.cached("mse", lambda: mse(batch.pred_rgb, batch.gt_rgb)))[:, None]


@register_metric(higher_is_better=True)
class Ssim(Metric):
    name = "ssim"
    version = "1"
    definition = (
        "SSIM as skimage.metrics.structural_similarity(gt, pred, channel_axis=-1, data_range=255): 7x7 uniform "
        "window, sample covariance, K1 = 0.01, K2 = 0.03, border of 3 px cropped, mean over the 3 RGB channels; "
        "mean over images."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return ssim_t(batch.rgb_t("pred"), batch.rgb_t("gt")).numpy()[:, None]


__all__ = ["PSNR_CAP_DB", "mse", "psnr", "ssim", "psnr_from_mse", "ssim_t", "Mse", "Psnr", "Ssim"]
