"""Hwang & Zhou: VGG-16 residual regression (after Dahl) and the CIELUV hypercolumn classifier.

* ``vgg16_regression``: VGG-16 convolutional encoder (to conv4_3) on L replicated
  to three channels; a residual decoder (Dahl's "residual encoder") that starts
  at the deepest features, and at each scale upsamples x2 and adds a 1x1
  projection (+ BatchNorm) of the encoder features of that scale; a 3x3 conv to
  ab. L2 (default) or Huber loss.
* ``vgg16_uv_classifier``: the same encoder; hypercolumns (conv1_2, conv2_2,
  conv3_3, conv4_3 upsampled to 1/2 resolution and concatenated), three 3x3
  convolutions, then two parallel 1x1 heads of 50 classes each for U and V of
  CIELUV; loss = CE(U) + CE(V). Output: the centre (mean) of the chosen bin of
  each head, i.e. a predicted (L, U, V), converted to Lab so ``forward`` returns
  ab like every other model.

``width`` divides the channel counts (1 = the paper's VGG-16); the shipped
weights use a narrow variant (see their cards). The encoder loads torchvision's
ImageNet VGG-16 when it can be downloaded (``encoder_pretrained=True``); offline
it starts from random initialisation.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import color
from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

log = logging.getLogger(__name__)

_PAPER = "Hwang & Zhou. Image Colorization with Deep Convolutional Neural Networks (Stanford CS231n report, 2016)."
_DAHL = "Dahl. Automatic Colorization (blog post and residual encoder, 2016)."

#: VGG-16 conv layers up to conv4_3 (channels), pooling after each stage but the last
_VGG_STAGES = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))

#: CIELUV ranges of the sRGB gamut (D65) and the 50-bin quantisation of U and V
U_RANGE = (-134.0, 220.0)
V_RANGE = (-140.0, 122.0)
N_UV_BINS = 50

#: channel divisor of the shipped (CPU-trained) weights
SHIPPED_WIDTH = 4


def _spec(name: str) -> WeightsSpec:
    return WeightsSpec(filename=f"{name}.safetensors", license="MIT (trained by this project)")


VGG16_REGRESSION_WEIGHTS = _spec("vgg16_regression")
VGG16_UV_WEIGHTS = _spec("vgg16_uv_classifier")


class VGGEncoder(nn.Module):
    """VGG-16 conv1_1 .. conv4_3 (ReLU after each conv, max-pool between stages) -> four stage outputs."""

    def __init__(self, width: int = 1, pretrained: bool = False) -> None:
        super().__init__()
        stages, cin = [], 3
        for chans in _VGG_STAGES:
            layers: List[nn.Module] = []
            for c in chans:
                layers += [nn.Conv2d(cin, c // width, 3, padding=1), nn.ReLU(inplace=True)]
                cin = c // width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.channels = [c[-1] // width for c in _VGG_STAGES]
        self.init = "random"
        if pretrained:
            self._load_imagenet(width)

    def _load_imagenet(self, width: int) -> None:
        if width != 1:
            log.warning("ImageNet VGG-16 weights need width=1; random init")
            return
        try:
            import torchvision

            sd = torchvision.models.VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception as e:  # offline
            log.warning("VGG-16 ImageNet weights unavailable (%s); random init", type(e).__name__)
            return
        convs = [m for s in self.stages for m in s if isinstance(m, nn.Conv2d)]
        keys = sorted({k.rsplit(".", 1)[0] for k in sd if k.startswith("features.")}, key=lambda k: int(k.split(".")[1]))
        for conv, k in zip(convs, keys):
            conv.weight.data.copy_(sd[k + ".weight"])
            conv.bias.data.copy_(sd[k + ".bias"])
        self.init = "imagenet (torchvision)"

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            feats.append(x)
        return feats


def _vgg_input(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> three identical channels with ImageNet mean/std of gray (mean ~0.45, std ~0.226)."""
    x = (L / 100.0 - 0.449) / 0.226
    return x.expand(-1, 3, -1, -1)


class VGG16Regression(Colorizer):
    """Residual decoder over a VGG-16 encoder -> ab (tanh-scaled). H, W multiples of 8."""

    input_size = 224

    def __init__(self, width: int = 1, encoder_pretrained: bool = False, loss: str = "l2") -> None:
        super().__init__()
        self.loss_kind = loss
        self.encoder = VGGEncoder(width, encoder_pretrained)
        c1, c2, c3, c4 = self.encoder.channels
        self.bns = nn.ModuleList([nn.BatchNorm2d(c) for c in (c4, c3, c2, c1)])
        self.reduce = nn.ModuleList([nn.Conv2d(c4, c3, 1), nn.Conv2d(c3, c2, 3, padding=1),
                                     nn.Conv2d(c2, c1, 3, padding=1), nn.Conv2d(c1, c1, 3, padding=1)])
        self.out = nn.Conv2d(c1, 2, 3, padding=1)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        f1, f2, f3, f4 = self.encoder(_vgg_input(L))
        x = self.reduce[0](self.bns[0](f4))
        for bn, reduce, skip in zip(self.bns[1:], self.reduce[1:], (f3, f2, f1)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + bn(skip)
            x = F.relu(reduce(x))
        return self.unnormalize_ab(torch.tanh(self.out(x)))

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor, loss: Optional[str] = None):
        pred = self.normalize_ab(self(L))
        target = self.normalize_ab(ab)
        kind = loss or self.loss_kind
        val = F.mse_loss(pred, target) if kind == "l2" else F.smooth_l1_loss(pred, target, beta=0.05)
        return val, {}


def luv_to_lab(luv: torch.Tensor) -> torch.Tensor:
    """CIELUV ``(N, 3, H, W)`` -> CIELAB (both D65), through XYZ, without clipping to sRGB."""
    L, u, v = luv.unbind(-3)
    y = torch.where(L > 8.0, ((L + 16.0) / 116.0).pow(3), L / 903.3)
    safe_L = torch.where(L == 0, torch.ones_like(L), L)
    up = torch.where(L == 0, torch.zeros_like(u), u / (13.0 * safe_L)) + color._WHITE_UP
    vp = torch.where(L == 0, torch.zeros_like(v), v / (13.0 * safe_L)) + color._WHITE_VP
    safe_vp = torch.where(vp.abs() < 1e-6, torch.full_like(vp, 1e-6), vp)
    x = y * 9.0 * up / (4.0 * safe_vp)
    z = y * (12.0 - 3.0 * up - 20.0 * vp) / (4.0 * safe_vp)
    white = torch.as_tensor(color._WHITE_D65, dtype=luv.dtype, device=luv.device).view(3, 1, 1)
    f = color._f(torch.stack((x, y, z), dim=-3).clamp(min=0.0) / white)
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def uv_bin_centers(device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Centres (means) of the 50 U bins and the 50 V bins, each ``(50,)``."""
    def centres(lo: float, hi: float) -> torch.Tensor:
        step = (hi - lo) / N_UV_BINS
        return torch.linspace(lo + step / 2, hi - step / 2, N_UV_BINS, device=device)

    return centres(*U_RANGE), centres(*V_RANGE)


def uv_to_bins(uv: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """u, v ``(N, 2, H, W)`` -> bin indices ``(N, H, W)`` each, in [0, 49]."""
    out = []
    for c, (lo, hi) in enumerate((U_RANGE, V_RANGE)):
        idx = ((uv[:, c] - lo) / (hi - lo) * N_UV_BINS).floor().long().clamp(0, N_UV_BINS - 1)
        out.append(idx)
    return out[0], out[1]


class VGG16UVClassifier(Colorizer):
    """Hypercolumn classifier of U and V (50 bins each) on a VGG-16 encoder; ``forward`` -> Lab ab.

    Args:
        decode: ``"mode"`` (the paper: centre of the most likely bin) or ``"mean"``
            (expectation over the bins; smoother).
    """

    input_size = 224

    def __init__(self, width: int = 1, encoder_pretrained: bool = False, decode: str = "mode") -> None:
        super().__init__()
        self.decode_kind = decode
        self.encoder = VGGEncoder(width, encoder_pretrained)
        hyper = sum(self.encoder.channels)
        h = 512 // width
        self.trunk = nn.Sequential(
            nn.Conv2d(hyper, h, 3, padding=1), nn.BatchNorm2d(h), nn.ReLU(True),
            nn.Conv2d(h, h // 2, 3, padding=1), nn.BatchNorm2d(h // 2), nn.ReLU(True),
            nn.Conv2d(h // 2, h // 4, 3, padding=1), nn.BatchNorm2d(h // 4), nn.ReLU(True),
        )
        self.head_u = nn.Conv2d(h // 4, N_UV_BINS, 1)
        self.head_v = nn.Conv2d(h // 4, N_UV_BINS, 1)

    def logits(self, L: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> U and V logits ``(N, 50, H/2, W/2)`` each."""
        feats = self.encoder(_vgg_input(L))
        size = feats[1].shape[-2:]
        hyper = torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False)
                           if f.shape[-2:] != size else f for f in feats], dim=1)
        x = self.trunk(hyper)
        return self.head_u(x), self.head_v(x)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        zu, zv = self.logits(L)
        cu, cv = uv_bin_centers(L.device)
        if self.decode_kind == "mean":
            u = torch.einsum("nkhw,k->nhw", zu.softmax(1), cu)
            v = torch.einsum("nkhw,k->nhw", zv.softmax(1), cv)
        else:
            u, v = cu[zu.argmax(1)], cv[zv.argmax(1)]
        uv = F.interpolate(torch.stack((u, v), 1), size=L.shape[-2:], mode="bilinear", align_corners=False)
        lab = luv_to_lab(torch.cat((L, uv), dim=1))
        return lab[:, 1:].clamp(-color.AB_MAX, color.AB_MAX)

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor):
        lab = torch.cat((L, ab), dim=1)
        luv = color.rgb_to_luv(color.lab_to_rgb(lab))  # targets from the (in-gamut) training colours
        zu, zv = self.logits(L)
        uv = F.interpolate(luv[:, 1:], size=zu.shape[-2:], mode="area")
        bu, bv = uv_to_bins(uv)
        ce_u, ce_v = F.cross_entropy(zu, bu), F.cross_entropy(zv, bv)
        return ce_u + ce_v, {"ce_u": float(ce_u.detach()), "ce_v": float(ce_v.detach())}


@register_model(kind="regression", weights=VGG16_REGRESSION_WEIGHTS, paper=f"{_PAPER} Baseline after {_DAHL}",
                description="VGG-16 encoder (to conv4_3) on L with a residual decoder that upsamples and adds "
                            "projected encoder features at each scale, regressing ab with an L2 (or Huber) loss. "
                            "The shipped weights are a 1/4-width variant trained briefly from random init on CPU.")
def vgg16_regression(pretrained=False, width: Optional[int] = None, encoder_pretrained: bool = False,
                     loss: str = "l2", **kwargs) -> VGG16Regression:
    w = width or (SHIPPED_WIDTH if pretrained else 1)
    return VGG16Regression(w, encoder_pretrained and not pretrained, loss).load_pretrained(
        VGG16_REGRESSION_WEIGHTS, pretrained)


@register_model(kind="classification", weights=VGG16_UV_WEIGHTS, paper=_PAPER,
                description="CIELUV classifier: hypercolumns of a VGG-16 encoder, three 3x3 convolutions, two "
                            "parallel 1x1 heads of 50 bins for U and V, summed cross-entropy; the output is the "
                            "centre of each chosen bin, converted from (L, U, V) to Lab. The shipped weights are a "
                            "1/4-width variant trained briefly from random init on CPU.")
def vgg16_uv_classifier(pretrained=False, width: Optional[int] = None, encoder_pretrained: bool = False,
                        decode: str = "mode", **kwargs) -> VGG16UVClassifier:
    w = width or (SHIPPED_WIDTH if pretrained else 1)
    return VGG16UVClassifier(w, encoder_pretrained and not pretrained, decode).load_pretrained(
        VGG16_UV_WEIGHTS, pretrained)
