"""Baselines of the ECCV16 table: ``gray`` (ab = 0) and ``random`` (ab of another image)."""

from __future__ import annotations

import hashlib
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import register_model
from .base import Colorizer


class Gray(Colorizer):
    """Predicts ab = 0 everywhere: the grayscale input itself."""

    weights_id = "none"

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return L.new_zeros(L.shape[0], 2, *L.shape[-2:])


class RandomAB(Colorizer):
    """Returns the ab channels of another image drawn from a pool (ECCV16's "random" row).

    The draw is a deterministic function of the input's L, so a result can be
    reproduced, and the pool entry whose L matches the input is never drawn.

    Args:
        pool_rgb: uint8 ``HxWx3`` images to take ab from; default: the ``builtin`` dataset.
        pool_size: side the pool is stored at.
    """

    weights_id = "pool"

    def __init__(self, pool_rgb: Optional[Sequence] = None, pool_size: int = 128) -> None:
        super().__init__()
        self.pool_size = pool_size
        self._pool_L: Optional[torch.Tensor] = None
        self._pool_ab: Optional[torch.Tensor] = None
        if pool_rgb is not None:
            self.set_pool(pool_rgb)

    def set_pool(self, images: Sequence) -> None:
        from .. import color

        Ls: List[torch.Tensor] = []
        abs_: List[torch.Tensor] = []
        for img in images:
            t = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)[None]
            lab = color.rgb_to_lab(t)
            lab = F.interpolate(lab, size=(self.pool_size, self.pool_size), mode="bilinear", align_corners=False,
                                antialias=True)
            Ls.append(lab[:, :1])
            abs_.append(lab[:, 1:])
        if len(Ls) < 2:
            raise ValueError("the random baseline needs a pool of at least two images")
        self._pool_L = torch.cat(Ls)
        self._pool_ab = torch.cat(abs_)
        self.weights_id = "pool-" + hashlib.sha256(self._pool_ab.numpy().tobytes()).hexdigest()[:12]

    def _ensure_pool(self) -> None:
        if self._pool_ab is None:
            from ..data import load_dataset

            self.set_pool([item.rgb for item in load_dataset("builtin")])

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        self._ensure_pool()
        out = []
        for i in range(L.shape[0]):
            li = F.interpolate(L[i : i + 1].float(), size=(self.pool_size,) * 2, mode="bilinear", align_corners=False)
            same = (self._pool_L - li).abs().mean(dim=(1, 2, 3)) < 1.0
            candidates = (~same).nonzero().flatten()
            seed = int.from_bytes(hashlib.sha256(L[i].detach().cpu().numpy().tobytes()).digest()[:8], "little")
            g = torch.Generator().manual_seed(seed)
            j = candidates[torch.randint(len(candidates), (1,), generator=g)].item()
            out.append(F.interpolate(self._pool_ab[j : j + 1], size=L.shape[-2:], mode="bilinear", align_corners=False))
        return torch.cat(out).to(L.dtype)


@register_model(kind="baseline", paper="Zhang et al., ECCV 2016 (table 1 baseline)",
                description="Grayscale: ab = 0 everywhere. The floor of colourfulness; scores well on plain AuC.")
def gray(pretrained=False, **kwargs) -> Gray:
    return Gray()


@register_model(kind="baseline", paper="Zhang et al., ECCV 2016 (table 1 baseline)",
                description="Random: the ab channels of another, randomly drawn image of the dataset.")
def random(pretrained=False, pool_rgb=None, **kwargs) -> RandomAB:
    return RandomAB(pool_rgb=pool_rgb, **kwargs)
