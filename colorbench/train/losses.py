"""Losses shared by the trainable models (each model's ``training_loss`` picks its own).

All take ab in Lab units. Class-rebalancing weights follow ECCV16: ``w ∝ ((1-λ) p̃ + λ/Q)^-1``
from the ImageNet prior of the release (:func:`colorbench.color.rebalance_weights`).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
import torch.nn.functional as F

from .. import color


@functools.lru_cache(maxsize=4)
def class_weights(lam: float = 0.5) -> torch.Tensor:
    """ECCV16 rebalancing weights ``(313,)`` float32 (mean 1 under the ImageNet prior)."""
    return torch.as_tensor(color.rebalance_weights(lam=lam), dtype=torch.float32)


def pixel_weights(ab: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Rebalancing weight of each pixel's nearest ab bin, ``(N, 1, H, W)``."""
    return class_weights(lam).to(ab.device)[color.encode_ab(ab.detach())].unsqueeze(1)


def soft_cross_entropy(z: torch.Tensor, ab: torch.Tensor, rebalance: bool = True, lam: float = 0.5) -> torch.Tensor:
    """ECCV16 multinomial loss: logits ``(N, 313, h, w)`` against soft-encoded ``ab (N, 2, h, w)``
    (5 nearest bins, Gaussian sigma 5), each pixel weighted by its nearest bin's rebalancing weight."""
    target = color.soft_encode(ab.detach())
    ce = -(target * F.log_softmax(z, dim=1)).sum(1)
    if rebalance:
        ce = ce * class_weights(lam).to(z.device)[target.argmax(1)]
    return ce.mean()


def weighted_l1(pred: torch.Tensor, ab: torch.Tensor, rebalance: bool = False, beta: float = 0.0,
                lam: float = 0.5) -> torch.Tensor:
    """L1 (``beta = 0``) or smooth-L1/Huber (``beta > 0``, Lab units) over ab, optionally rebalanced."""
    err = F.smooth_l1_loss(pred, ab, beta=beta, reduction="none") if beta > 0 else (pred - ab).abs()
    if rebalance:
        err = err * pixel_weights(ab, lam)
    return err.mean()


def mse(pred: torch.Tensor, ab: torch.Tensor, rebalance: bool = False, lam: float = 0.5) -> torch.Tensor:
    err = (pred - ab).pow(2)
    if rebalance:
        err = err * pixel_weights(ab, lam)
    return err.mean()


def annealed_mean_from_logits(z: torch.Tensor, T: float) -> torch.Tensor:
    return color.annealed_mean(z, T)


__all__ = ["class_weights", "pixel_weights", "soft_cross_entropy", "weighted_l1", "mse"]
