"""Training data: images held in memory, seeded random crops with augmentation, as (L, ab).

Every batch is a pure function of ``(seed, step)``, so a run resumed from a
checkpoint draws exactly the batches an uninterrupted run would have drawn.

Augmentation (all in one affine resampling per sample): random resized crop
(scale and aspect ratio), horizontal flip, small rotation; then a jitter of the
lightness only (gamma and contrast of L; the ab target is unchanged, so colours
are preserved).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .. import color

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Augment:
    """Augmentation ranges. ``scale`` is the crop's area fraction of the image."""

    scale: Tuple[float, float] = (0.25, 1.0)
    ratio: Tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    rotate_deg: float = 10.0
    l_gamma: float = 0.2  # log-uniform gamma of L/100 in [exp(-g), exp(g)]
    l_contrast: float = 0.15  # contrast factor of L about 50 in [1-c, 1+c]

    @classmethod
    def none(cls) -> "Augment":
        return cls(scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False, rotate_deg=0.0, l_gamma=0.0, l_contrast=0.0)


def _resize_short(rgb: np.ndarray, max_short: int) -> torch.Tensor:
    """uint8 HxWx3 -> uint8 (3, h, w) with the shorter side at most ``max_short``."""
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    h, w = t.shape[-2:]
    s = max_short / min(h, w)
    if s < 1.0:
        size = (max(1, round(h * s)), max(1, round(w * s)))
        t = F.interpolate(t[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        t = t.round().clamp(0, 255).to(torch.uint8)
    return t.contiguous()


def mean_hue_deg(rgb: np.ndarray, min_chroma: float = 10.0) -> Optional[float]:
    """Mean hue angle (degrees in [0, 360)) of an image's chromatic pixels in Lab, chroma-weighted.

    Returns None for an (almost) achromatic image.
    """
    lab = color.rgb2lab(rgb[::4, ::4])
    a, b = lab[..., 1].ravel(), lab[..., 2].ravel()
    c = np.hypot(a, b)
    keep = c > min_chroma
    if keep.sum() < 50:
        return None
    ang = math.degrees(math.atan2(float((b[keep]).sum()), float((a[keep]).sum())))
    return ang % 360.0


def split_holdout(ids: Sequence[str], fraction: float = 0.1) -> Tuple[List[int], List[int]]:
    """Deterministic train/validation split by a hash of each id -> (train indices, val indices)."""
    train, val = [], []
    for i, name in enumerate(ids):
        h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < fraction else train).append(i)
    if not train:
        train, val = list(range(len(ids))), []
    return train, val


class ImagePool:
    """Images in memory (as Lab float32, shorter side capped), sampled as augmented (L, ab) batches.

    Args:
        images: uint8 ``HxWx3`` arrays.
        ids: a name per image (used for the hold-out split and the card).
        size: side of the square training crops.
        seed: base seed; batch ``step`` uses the generator seeded with ``(seed, step)``.
        augment: augmentation ranges.
        max_short: shorter side the images are kept at (default 1.25 * size).
    """

    def __init__(self, images: Sequence[np.ndarray], ids: Sequence[str], size: int, seed: int = 0,
                 augment: Augment = Augment(), max_short: Optional[int] = None,
                 weights: Optional[Sequence[float]] = None) -> None:
        if len(images) == 0:
            raise ValueError("no training images")
        self.size = size
        self.seed = seed
        self.augment = augment
        self.ids = list(ids)
        cap = max_short or int(round(size * 1.25))
        # kept as float32 Lab: crops are resampled in Lab (no per-batch colour conversion)
        self.images = [color.rgb_to_lab(_resize_short(im, cap)) for im in images]
        w = np.ones(len(images)) if weights is None else np.asarray(weights, dtype=np.float64)
        self.weights = torch.as_tensor(w / w.sum(), dtype=torch.float64)

    def __len__(self) -> int:
        return len(self.images)

    def _theta(self, g: torch.Generator, h: int, w: int) -> torch.Tensor:
        """Affine map from output coordinates to input coordinates (normalised [-1, 1])."""
        a = self.augment

        def u(lo: float, hi: float) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))

        area = u(*a.scale)
        log_r = u(math.log(a.ratio[0]), math.log(a.ratio[1]))
        ratio = math.exp(log_r)
        # crop side lengths in pixels: cw/ch = ratio, cw*ch = area * min(h, w)^2 (square-ish crops
        # of the shorter side at area 1), clipped to the image
        side = math.sqrt(area) * min(h, w)
        cw = min(w, side * math.sqrt(ratio))
        ch = min(h, side / math.sqrt(ratio))
        ang = math.radians(u(-a.rotate_deg, a.rotate_deg)) if a.rotate_deg else 0.0
        # shrink the crop so the rotated square stays inside the image
        shrink = 1.0 / (abs(math.cos(ang)) + abs(math.sin(ang)))
        cw, ch = cw * shrink, ch * shrink
        cx = u(cw / 2, w - cw / 2) if w > cw else w / 2
        cy = u(ch / 2, h - ch / 2) if h > ch else h / 2
        flip = -1.0 if (a.flip and float(torch.rand((), generator=g)) < 0.5) else 1.0
        cos, sin = math.cos(ang), math.sin(ang)
        # output (x, y) in [-1, 1] -> input: rotate, scale to the crop, translate to its centre
        # build the matrix explicitly in pixel units for clarity
        m_out = torch.tensor([[flip * cw / 2, 0.0], [0.0, ch / 2]], dtype=torch.float64)
        rot = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
        to_norm = torch.tensor([[2.0 / w, 0.0], [0.0, 2.0 / h]], dtype=torch.float64)
        lin = to_norm @ rot @ m_out
        t = torch.tensor([2.0 * cx / w - 1.0, 2.0 * cy / h - 1.0], dtype=torch.float64)
        theta = torch.cat((lin, t[:, None]), dim=1).float()
        return theta

    def _jitter_l(self, L: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        a = self.augment
        if a.l_gamma:
            gamma = math.exp((2 * float(torch.rand((), generator=g)) - 1) * a.l_gamma)
            L = 100.0 * (L / 100.0).clamp(min=0.0).pow(gamma)
        if a.l_contrast:
            c = 1.0 + (2 * float(torch.rand((), generator=g)) - 1) * a.l_contrast
            L = (50.0 + (L - 50.0) * c).clamp(0.0, 100.0)
        return L

    def sample(self, step: int, batch_size: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Batch ``step``: L ``(B, 1, S, S)`` in [0, 100] (jittered) and ab ``(B, 2, S, S)`` in Lab units."""
        g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(step))
        idx = torch.multinomial(self.weights, batch_size, replacement=True, generator=g).tolist()
        crops = []
        for i in idx:
            img = self.images[i]
            h, w = img.shape[-2:]
            theta = self._theta(g, h, w)
            grid = F.affine_grid(theta[None], [1, 3, self.size, self.size], align_corners=False)
            crops.append(F.grid_sample(img[None], grid, mode="bilinear", padding_mode="reflection",
                                       align_corners=False))
        lab = torch.cat(crops)
        L = torch.cat([self._jitter_l(lab[k : k + 1, :1], g) for k in range(lab.shape[0])])
        return L, lab[:, 1:].contiguous()

    def fixed_batches(self, batch_size: int) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Centre crops of every image (no augmentation), for validation."""
        Ls, abs_ = [], []
        for img in self.images:
            h, w = img.shape[-2:]
            s = min(h, w)
            t, l = (h - s) // 2, (w - s) // 2
            crop = img[:, t : t + s, l : l + s][None]
            lab = F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
            Ls.append(lab[:, :1])
            abs_.append(lab[:, 1:])
        L, ab = torch.cat(Ls), torch.cat(abs_)
        return [(L[s : s + batch_size], ab[s : s + batch_size]) for s in range(0, len(L), batch_size)]


def load_images(data: str, limit: Optional[int] = None) -> Tuple[List[np.ndarray], List[str]]:
    """Images of a dataset spec (``builtin``, ``folder:PATH`` or a hosted dataset) -> (arrays, ids)."""
    from ..data import load_dataset

    if data == "builtin":
        log.warning("training on `builtin`, the evaluation set: its scores will not measure generalisation")
    ds = load_dataset(data)
    items = list(ds)[:limit] if limit else list(ds)
    return [it.rgb for it in items], [it.id for it in items]
