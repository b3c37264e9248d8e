"""A small, trainable ECCV16-style network for the paper's loss ablation.

The full ECCV16 network (32M parameters, trained for days on ImageNet) cannot be
trained on this project's CPU, so the ablation of Zhang et al. (Table 1: L2
regression, classification, classification with rebalancing) is run on a
narrow version of the same layout: eight conv blocks (widths divided by
``width_div``, 4 for the shipped weights), stride 4 overall, dilated blocks 5-6,
one deconvolution, a head at 1/4 resolution. Three registered variants:

* ``eccv16_small_l2``: regression head (2 channels), L2 loss ("Ours (L2)").
* ``eccv16_small_class``: 313-bin soft-encoded cross-entropy without rebalancing
  ("Ours (class)"), annealed-mean decoding.
* ``eccv16_small_rebal``: the same with class rebalancing, lambda = 0.5
  ("Ours (full)").
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .. import color
from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

_PAPER = "Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016 (Table 1 ablation, on a small network)."
_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 256)
SHIPPED_WIDTH_DIV = 4


def _block(cin: int, cout: int, n: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    layers: List[nn.Module] = []
    for i in range(n):
        s = stride if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation, dilation=dilation),
                   nn.ReLU(True)]
    layers.append(nn.BatchNorm2d(cout))
    return nn.Sequential(*layers)


class ECCV16Small(Colorizer):
    """Narrow ECCV16 layout with a ``head`` of ``"class"`` (313 bins) or ``"l2"`` (ab regression).

    ``forward(L, T=None)`` -> ab ``(N, 2, H, W)``; ``rebalance`` selects the training loss.
    """

    supports_temperature = True
    input_size = 224

    def __init__(self, head: str = "class", rebalance: bool = True, width_div: int = 1,
                 temperature: float = color.T_RELEASED) -> None:
        super().__init__()
        if head not in ("class", "l2"):
            raise ValueError(f"head must be 'class' or 'l2', got {head!r}")
        self.head_kind, self.rebalance, self.temperature = head, rebalance, temperature
        c = [w // width_div for w in _WIDTHS]
        self.features = nn.Sequential(
            _block(1, c[0], 2, stride=2), _block(c[0], c[1], 2, stride=2), _block(c[1], c[2], 3, stride=2),
            _block(c[2], c[3], 3), _block(c[3], c[4], 3, dilation=2), _block(c[4], c[5], 3, dilation=2),
            _block(c[5], c[6], 3),
            nn.ConvTranspose2d(c[6], c[7], 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(c[7], c[7], 3, padding=1), nn.ReLU(True),
        )
        self.head = nn.Conv2d(c[7], color.NUM_AB_BINS if head == "class" else 2, 1)
        self.supports_temperature = head == "class"

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self.normalize_l(L)))

    def forward(self, L: torch.Tensor, T: Optional[float] = None) -> torch.Tensor:
        z = self.logits(L)
        if self.head_kind == "class":
            ab = color.annealed_mean(z, self.temperature if T is None else T)
        else:
            ab = self.unnormalize_ab(z)
        return F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor):
        from ..train.losses import soft_cross_entropy

        z = self.logits(L)
        ab_small = F.interpolate(ab, size=z.shape[-2:], mode="area")
        if self.head_kind == "l2":
            loss = F.mse_loss(z, self.normalize_ab(ab_small))
        else:
            loss = soft_cross_entropy(z, ab_small, rebalance=self.rebalance)
        return loss, {}


def _variant(name: str, head: str, rebalance: bool, description: str):
    spec = WeightsSpec(filename=f"{name}.safetensors", license="MIT (trained by this project)")

    def factory(pretrained=False, width_div: Optional[int] = None, **kwargs) -> ECCV16Small:
        w = width_div or (SHIPPED_WIDTH_DIV if pretrained else SHIPPED_WIDTH_DIV)
        return ECCV16Small(head, rebalance, w).load_pretrained(spec, pretrained)

    factory.__name__ = name
    kind = "regression" if head == "l2" else "classification"
    return register_model(factory, kind=kind, weights=spec, paper=_PAPER, temperature=head == "class",
                          description=description + " A 1/4-width ECCV16 layout trained briefly on CPU on this "
                                                    "project's corpus (the full network cannot be trained here).")


eccv16_small_l2 = _variant("eccv16_small_l2", "l2", False,
                           "ECCV16 ablation 'L2': the ECCV16 layout regressing ab with a Euclidean loss.")
eccv16_small_class = _variant("eccv16_small_class", "class", False,
                              "ECCV16 ablation 'class': 313-bin soft-encoded cross-entropy without class "
                              "rebalancing, annealed-mean decoding.")
eccv16_small_rebal = _variant("eccv16_small_rebal", "class", True,
                              "ECCV16 ablation 'full': 313-bin cross-entropy with class rebalancing "
                              "(lambda = 0.5), annealed-mean decoding.")
