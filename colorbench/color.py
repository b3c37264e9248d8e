"""Colour science shared by every model, metric and the pipeline.

Conventions (the ones of the official ECCV16/SIGGRAPH17 release):

* sRGB with the D65 white point, values in [0, 1] (floats) or uint8 in [0, 255].
* CIELAB: ``L in [0, 100]``, ``a, b`` roughly in ``[-110, 110]``.
* CIELUV: ``L in [0, 100]``, ``u in [-134, 220]``, ``v in [-140, 122]`` for sRGB.
* Torch functions take channel-first tensors ``(..., 3, H, W)``; numpy functions
  take channel-last arrays ``(..., 3)`` like scikit-image.

The formulas and constants follow scikit-image (``skimage.color``) so numbers agree
with the reference implementation the official demo uses.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

# -- normalisation used inside the official models (one place) ---------------
L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0
AB_MAX = 110.0  # ab is clipped to [-AB_MAX, AB_MAX] before recombination

# -- quantization ---------------------------------------------------------------
GRID = 10.0  # ab grid step of the 313 classes
NUM_AB_BINS = 313
T_RELEASED = 0.38  # annealed-mean temperature of the released demo
T_PAPER = 0.45  # temperature given in the ECCV16 paper text

_SHA256 = {
    "pts_in_hull.npy": "b5dec01315c34f43f1c8c089e84c45ae35d1838d8e77ed0e7ca930f79ffa450e",
    "prior_probs.npy": "19d00659c7d6f6ee47456fd2c19c86a073f7124875e3d5ab9d601864e062b56c",
}

# sRGB (D65) <-> XYZ, as in scikit-image
_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_EPS = 0.008856  # (6/29)^3 as rounded by CIE / scikit-image
_KAPPA = 7.787
_DELTA_INV = 0.2068966  # 6/29

TensorOrArray = Union[torch.Tensor, np.ndarray]


# =============================================================================
# torch, channel-first
# =============================================================================
def _to_float(rgb: torch.Tensor) -> torch.Tensor:
    if rgb.dtype == torch.uint8:
        return rgb.float().div_(255.0)
    return rgb if rgb.is_floating_point() else rgb.float()


def _mix(x: torch.Tensor, m: np.ndarray) -> torch.Tensor:
    """Apply a 3x3 matrix over the channel axis (-3)."""
    w = torch.as_tensor(m, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", w, x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    rgb = _to_float(rgb)
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).pow(2.4), rgb / 12.92)


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    lin = lin.clamp(min=0.0)
    return torch.where(lin > 0.0031308, 1.055 * lin.pow(1.0 / 2.4) - 0.055, 12.92 * lin).clamp_(0.0, 1.0)


def rgb_to_xyz(rgb: torch.Tensor) -> torch.Tensor:
    return _mix(srgb_to_linear(rgb), _XYZ_FROM_RGB)


def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    return linear_to_srgb(_mix(xyz, _RGB_FROM_XYZ))


def _f(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _EPS, t.clamp(min=_EPS).pow(1.0 / 3.0), _KAPPA * t + 16.0 / 116.0)


def _f_inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _DELTA_INV, t.pow(3), (t - 16.0 / 116.0) / _KAPPA)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(..., 3, H, W)`` (float in [0, 1] or uint8) -> Lab, same shape, float."""
    xyz = rgb_to_xyz(rgb)
    white = torch.as_tensor(_WHITE_D65, dtype=xyz.dtype, device=xyz.device).view(3, 1, 1)
    f = _f(xyz / white)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


@functools.lru_cache(maxsize=None)
def _uint8_to_linear_lut() -> torch.Tensor:
    return srgb_to_linear(torch.arange(256, dtype=torch.float64) / 255.0).float()


@functools.lru_cache(maxsize=None)
def _linear_to_uint8_lut(n: int = 1 << 16) -> torch.Tensor:
    return to_uint8(linear_to_srgb(torch.arange(n, dtype=torch.float64) / (n - 1)))


def rgb_to_l(rgb: torch.Tensor) -> torch.Tensor:
    """Lightness only, ``(..., 1, H, W)``: cheaper than the full conversion (a table lookup for uint8)."""
    if rgb.dtype == torch.uint8:
        lut = _uint8_to_linear_lut()
        w = _XYZ_FROM_RGB[1]
        y = lut[rgb.select(-3, 0).long()] * w[0]
        y += lut[rgb.select(-3, 1).long()] * w[1]
        y += lut[rgb.select(-3, 2).long()] * w[2]
        y = y.unsqueeze(-3)
    else:
        lin = srgb_to_linear(rgb)
        w = torch.as_tensor(_XYZ_FROM_RGB[1], dtype=lin.dtype, device=lin.device)
        y = torch.einsum("j,...jhw->...hw", w, lin).unsqueeze(-3)
    return 116.0 * _f(y) - 16.0


def linear_to_uint8(lin: torch.Tensor) -> torch.Tensor:
    """Linear RGB -> sRGB uint8 through a 65536-entry table (within 1 level of the exact formula)."""
    lut = _linear_to_uint8_lut()
    idx = lin.clamp(0.0, 1.0).mul_(len(lut) - 1).add_(0.5).long()
    return lut[idx]


def lab_to_linear(lab: torch.Tensor) -> torch.Tensor:
    """Lab ``(..., 3, H, W)`` -> linear RGB, not clipped (out-of-gamut values leave [0, 1])."""
    L, a, b = lab.unbind(-3)
    fy = (L + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)
    white = torch.as_tensor(_WHITE_D65, dtype=lab.dtype, device=lab.device).view(3, 1, 1)
    xyz = _f_inv(torch.stack((fx, fy, fz), dim=-3)) * white
    return _mix(xyz, _RGB_FROM_XYZ)


def _in_gamut(lin: torch.Tensor, tol: float = 1e-4) -> torch.Tensor:
    return ((lin >= -tol) & (lin <= 1.0 + tol)).all(dim=-3)


def gamut_map(lab: torch.Tensor, iters: int = 7) -> torch.Tensor:
    """Bring out-of-gamut Lab colours into sRGB by shrinking their chroma, keeping L and hue.

    A per-pixel bisection on the chroma scale, run on the out-of-gamut pixels only; the
    kept scale is always inside the gamut, so L is exact whatever ``iters`` (which only
    sets how close to the gamut boundary the chroma lands: within 2^-iters).
    Returns the linear RGB of the mapped colours ``(..., 3, H, W)``.
    """
    lin = lab_to_linear(lab)
    bad = ~_in_gamut(lin)
    if not bool(bad.any()):
        return lin
    pix = lab.movedim(-3, -1)[bad]  # (P, 3)
    dt, dev = lab.dtype, lab.device
    m = torch.as_tensor(_RGB_FROM_XYZ, dtype=dt, device=dev)  # rgb = X m[:,0] + Y m[:,1] + Z m[:,2]
    fy = (pix[:, 0:1] + 16.0) / 116.0
    y_part = _f_inv(fy) * m[:, 1]  # (P, 3): the lightness term, fixed while chroma shrinks
    da, db = pix[:, 1:2] / 500.0, pix[:, 2:3] / 200.0
    wx, wz = float(_WHITE_D65[0]), float(_WHITE_D65[2])

    def rgb_at(scale: torch.Tensor) -> torch.Tensor:
        x = _f_inv(fy + scale * da) * wx
        z = _f_inv((fy - scale * db).clamp(min=0.0)) * wz
        return y_part + x * m[:, 0] + z * m[:, 2]

    lo = pix.new_zeros(pix.shape[0], 1)
    hi = pix.new_ones(pix.shape[0], 1)
    for _ in range(iters):
        mid = (lo + hi) * 0.5
        trial = rgb_at(mid)
        ok = ((trial >= -1e-7) & (trial <= 1.0 + 1e-7)).all(dim=1, keepdim=True)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    lin.movedim(-3, -1)[bad] = rgb_at(lo)  # in place: lin is ours
    return lin


def lab_to_rgb(lab: torch.Tensor, keep_lightness: bool = False) -> torch.Tensor:
    """Lab ``(..., 3, H, W)`` -> sRGB float in [0, 1].

    With ``keep_lightness=False`` out-of-gamut values are clipped per channel, as
    scikit-image does (which changes L there); with ``True`` their chroma is reduced
    until they fit, so the result keeps the input's L (and hue).
    """
    lin = gamut_map(lab) if keep_lightness else lab_to_linear(lab)
    return linear_to_srgb(lin)


def _uv_prime(xyz: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    x, y, z = xyz.unbind(-3)
    denom = x + 15.0 * y + 3.0 * z
    safe = torch.where(denom == 0, torch.ones_like(denom), denom)
    up = torch.where(denom == 0, torch.zeros_like(x), 4.0 * x / safe)
    vp = torch.where(denom == 0, torch.zeros_like(y), 9.0 * y / safe)
    return up, vp


_WHITE_UP = 4.0 * _WHITE_D65[0] / (_WHITE_D65[0] + 15.0 * _WHITE_D65[1] + 3.0 * _WHITE_D65[2])
_WHITE_VP = 9.0 * _WHITE_D65[1] / (_WHITE_D65[0] + 15.0 * _WHITE_D65[1] + 3.0 * _WHITE_D65[2])


def rgb_to_luv(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(..., 3, H, W)`` -> CIELUV (D65), same shape."""
    xyz = rgb_to_xyz(rgb)
    y = xyz[..., 1, :, :]
    L = torch.where(y > _EPS, 116.0 * y.clamp(min=_EPS).pow(1.0 / 3.0) - 16.0, 903.3 * y)
    up, vp = _uv_prime(xyz)
    return torch.stack((L, 13.0 * L * (up - _WHITE_UP), 13.0 * L * (vp - _WHITE_VP)), dim=-3)


def luv_to_rgb(luv: torch.Tensor) -> torch.Tensor:
    """CIELUV ``(..., 3, H, W)`` -> sRGB float in [0, 1]."""
    L, u, v = luv.unbind(-3)
    y = torch.where(L > 8.0, ((L + 16.0) / 116.0).pow(3), L / 903.3)
    safe_L = torch.where(L == 0, torch.ones_like(L), L)
    up = torch.where(L == 0, torch.zeros_like(u), u / (13.0 * safe_L)) + _WHITE_UP
    vp = torch.where(L == 0, torch.zeros_like(v), v / (13.0 * safe_L)) + _WHITE_VP
    safe_vp = torch.where(vp == 0, torch.ones_like(vp), vp)
    x = torch.where(vp == 0, torch.zeros_like(y), y * 9.0 * up / (4.0 * safe_vp))
    z = torch.where(vp == 0, torch.zeros_like(y), y * (12.0 - 3.0 * up - 20.0 * vp) / (4.0 * safe_vp))
    return xyz_to_rgb(torch.stack((x, y, z), dim=-3))


# =============================================================================
# numpy, channel-last (scikit-image layout)
# =============================================================================
def _np_call(fn, arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64 if arr.dtype == np.float64 else np.float32))
    t = torch.movedim(t, -1, -3)
    out = fn(t)
    return torch.movedim(out, -3, -1).numpy()


def rgb2lab(rgb: np.ndarray) -> np.ndarray:
    """numpy ``(..., 3)`` sRGB -> Lab (like ``skimage.color.rgb2lab``)."""
    return _np_call(rgb_to_lab, rgb)


def lab2rgb(lab: np.ndarray) -> np.ndarray:
    return _np_call(lab_to_rgb, lab)


def rgb2luv(rgb: np.ndarray) -> np.ndarray:
    return _np_call(rgb_to_luv, rgb)


def luv2rgb(luv: np.ndarray) -> np.ndarray:
    return _np_call(luv_to_rgb, luv)


def to_uint8(rgb01: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] -> uint8 with round-half-up, same shape."""
    return rgb01.mul(255.0).add_(0.5).clamp_(0, 255).to(torch.uint8)


# =============================================================================
# ab quantization (313 in-gamut bins, grid 10)
# =============================================================================
@functools.lru_cache(maxsize=None)
def _asset(name: str) -> np.ndarray:
    data = resources.files("colorbench.assets").joinpath(name).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != _SHA256[name]:
        raise RuntimeError(f"packaged {name} is corrupted: sha256 {digest} != {_SHA256[name]}")
    import io as _io

    arr = np.load(_io.BytesIO(data), allow_pickle=False)
    arr.setflags(write=False)
    return arr


def ab_centers() -> np.ndarray:
    """``(313, 2)`` float64: ab centres of the released quantization."""
    return _asset("pts_in_hull.npy").astype(np.float64)


def imagenet_prior() -> np.ndarray:
    """``(313,)`` float64: the release's ImageNet class prior (sums to 1)."""
    return _asset("prior_probs.npy").astype(np.float64)


def _centers_t(like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(ab_centers(), dtype=like.dtype if like.is_floating_point() else torch.float32, device=like.device)


def _pairwise_sq(ab: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """ab ``(N, 2, H, W)`` -> squared distances ``(N, Q, H, W)``."""
    d = ab.unsqueeze(2) - centers.t().view(1, 2, -1, 1, 1)
    return d.pow(2).sum(1)


def encode_ab(ab: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Hard-encode ab ``(N, 2, H, W)`` to the nearest of the 313 bins -> ``(N, H, W)`` int64."""
    centers = _centers_t(ab)
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    out = torch.empty(flat.shape[0], dtype=torch.long, device=ab.device)
    for s in range(0, flat.shape[0], chunk):
        out[s : s + chunk] = torch.cdist(flat[s : s + chunk], centers).argmin(1)
    return out.view(n, h, w)


def soft_encode(ab: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """Soft-encode ab ``(N, 2, H, W)`` over its ``k`` nearest bins with a Gaussian.

    Returns ``(N, 313, H, W)`` non-negative, summing to 1 over dim 1.
    """
    d2 = _pairwise_sq(ab.float(), _centers_t(ab.float()))
    nd2, idx = d2.topk(k, dim=1, largest=False)
    wts = torch.exp(-(nd2 - nd2[:, :1]) / (2.0 * sigma**2))  # relative to the nearest: no underflow
    wts = wts / wts.sum(1, keepdim=True)
    return torch.zeros_like(d2).scatter_(1, idx, wts)


def annealed_mean(logits: torch.Tensor, T: float = T_RELEASED) -> torch.Tensor:
    """Decode class scores ``(N, 313, H, W)`` (unnormalised log-probabilities) to ab.

    ``f_T(z) = softmax(log z / T)``; ``T = 1`` gives the mean, ``T -> 0`` the mode.
    Returns ab ``(N, 2, H, W)`` in Lab units.
    """
    centers = _centers_t(logits)
    if T <= 0:
        idx = logits.argmax(1)
        return centers[idx].permute(0, 3, 1, 2)
    p = torch.softmax(logits / T, dim=1)
    return torch.einsum("nqhw,qc->nchw", p, centers)


def annealed_mean_from_probs(probs: torch.Tensor, T: float = T_RELEASED, eps: float = 1e-12) -> torch.Tensor:
    """As :func:`annealed_mean`, from probabilities that sum to 1 over dim 1."""
    return annealed_mean(torch.log(probs.clamp(min=eps)), T)


def smooth_prior(prior: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    """Smooth a 313-bin prior with a Gaussian of ``sigma`` (ab units) over the bin centres."""
    c = ab_centers()
    d2 = ((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma**2))
    s = k @ np.asarray(prior, dtype=np.float64)
    return s / s.sum()


def rebalance_weights(prior: np.ndarray | None = None, lam: float = 0.5, sigma: float = 5.0) -> np.ndarray:
    """Class-rebalancing weights ``w ∝ ((1-λ) p̃ + λ/Q)^-1``, normalised so ``E_p[w] = 1``.

    ``p̃`` is the prior smoothed with a Gaussian of ``sigma``; ``Q = 313``.
    """
    p = imagenet_prior() if prior is None else np.asarray(prior, dtype=np.float64)
    p = p / p.sum()
    mix = (1.0 - lam) * smooth_prior(p, sigma) + lam / p.size
    w = 1.0 / mix
    return w / (p * w).sum()


def prior_from_ab(ab_batches, sigma: float | None = None) -> np.ndarray:
    """Empirical 313-bin prior of ground-truth ab over an iterable of ``(N, 2, H, W)`` tensors."""
    counts = np.zeros(NUM_AB_BINS, dtype=np.float64)
    for ab in ab_batches:
        counts += np.bincount(encode_ab(ab).flatten().cpu().numpy(), minlength=NUM_AB_BINS)
    if counts.sum() == 0:
        raise ValueError("no pixels to estimate a prior from")
    p = counts / counts.sum()
    return smooth_prior(p, sigma) if sigma else p


def resize_ab(ab: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of ab to ``size`` = (H, W), clipped to the valid range."""
    if tuple(ab.shape[-2:]) != tuple(size):
        ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
    return ab.clamp(-AB_MAX, AB_MAX)
