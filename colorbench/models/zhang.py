"""ECCV16 and SIGGRAPH17 colorizers of Zhang et al., with the official module layout.

The attribute names and layer order reproduce the official release so its
checkpoints (``colorization_release_v2-9b330a0b.pth``, ``siggraph17-df00044c.pth``)
load with ``strict=True`` and no key renaming.

* ECCV16: "Colorful Image Colorization", Zhang, Isola, Efros, ECCV 2016.
  313-bin classification, decoded by the annealed mean (temperature ``T``).
* SIGGRAPH17: "Real-Time User-Guided Image Colorization with Learned Deep
  Priors", Zhang, Zhu, Isola, Geng, Lin, Yu, Efros, SIGGRAPH 2017. Regression head
  with optional user hints (ab + mask).
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from .. import color
from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

_BASE = "https://colorizers.s3.us-east-2.amazonaws.com/"
ECCV16_WEIGHTS = WeightsSpec(
    filename="colorization_release_v2-9b330a0b.pth",
    sha256="9b330a0b",
    url=_BASE + "colorization_release_v2-9b330a0b.pth",
    env="COLORBENCH_ECCV16_WEIGHTS",
    license="BSD-2-Clause (richzhang/colorization)",
)
SIGGRAPH17_WEIGHTS = WeightsSpec(
    filename="siggraph17-df00044c.pth",
    sha256="df00044c",
    url=_BASE + "siggraph17-df00044c.pth",
    env="COLORBENCH_SIGGRAPH17_WEIGHTS",
    license="BSD-2-Clause (richzhang/colorization)",
)


def _block(channels: Sequence[int], dilation: int = 1, stride_last: int = 1, norm: bool = True,
           lead_relu: bool = False) -> nn.Sequential:
    """conv-relu repeated (optionally led by a ReLU), then BatchNorm; the official layout."""
    layers: List[nn.Module] = [nn.ReLU(True)] if lead_relu else []
    n = len(channels) - 1
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = stride_last if i == n - 1 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=True), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCV16(Colorizer):
    """ECCV16 generator. ``forward(L, T=None)`` -> ab; ``logits(L)`` -> 313-bin scores at 1/4 size."""

    supports_temperature = True

    def __init__(self, temperature: float = color.T_RELEASED) -> None:
        super().__init__()
        self.temperature = temperature
        self.model1 = _block([1, 64, 64], stride_last=2)
        self.model2 = _block([64, 128, 128], stride_last=2)
        self.model3 = _block([128, 256, 256, 256], stride_last=2)
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        up = [nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True), nn.ReLU(True)]
        self.model8 = nn.Sequential(*up, *_block([256, 256, 256], norm=False),
                                    nn.Conv2d(256, color.NUM_AB_BINS, 1, bias=True))
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(color.NUM_AB_BINS, 2, 1, bias=False)
        self.upsample4 = nn.Upsample(scale_factor=4, mode="bilinear")
        with torch.no_grad():  # the decoding layer holds the bin centres (as in the release)
            centers = torch.as_tensor(color.ab_centers(), dtype=torch.float32) / self.ab_norm
            self.model_out.weight.copy_(centers.t().reshape(2, color.NUM_AB_BINS, 1, 1))

    def logits(self, L: torch.Tensor) -> torch.Tensor:
        x = self.normalize_l(L)
        for m in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7, self.model8):
            x = m(x)
        return x

    def forward(self, L: torch.Tensor, T: Optional[float] = None) -> torch.Tensor:
        T = self.temperature if T is None else T
        z = self.logits(L)
        if T <= 0:
            p = nn.functional.one_hot(z.argmax(1), color.NUM_AB_BINS).permute(0, 3, 1, 2).to(z.dtype)
        else:
            p = self.softmax(z / T)
        return self.unnormalize_ab(self.upsample4(self.model_out(p)))


class SIGGRAPH17(Colorizer):
    """SIGGRAPH17 generator: ``forward(L, hint_ab=None, hint_mask=None)`` -> ab.

    Hints: ``hint_ab`` ``(N, 2, H, W)`` in Lab units (zero where no hint) and
    ``hint_mask`` ``(N, 1, H, W)``, 1 where a hint is given, else 0. Without hints
    the network runs automatic colorization (both inputs zero, as released).
    """

    supports_hints = True

    def __init__(self, classes: int = 529) -> None:
        super().__init__()
        self.model1 = _block([4, 64, 64])
        self.model2 = _block([64, 128, 128])
        self.model3 = _block([128, 256, 256, 256])
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1, bias=True))
        self.model8 = _block([256, 256, 256], lead_relu=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, 4, stride=2, padding=1, bias=True))
        self.model9 = _block([128, 128], lead_relu=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1, bias=True))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1, bias=True),
                                     nn.LeakyReLU(negative_slope=0.2))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, 3, padding=1, bias=True))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, 3, padding=1, bias=True))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=True))
        self.model_class = nn.Sequential(nn.Conv2d(256, classes, 1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1, bias=True), nn.Tanh())
        self.upsample4 = nn.Sequential(nn.Upsample(scale_factor=4, mode="bilinear"))
        self.softmax = nn.Sequential(nn.Softmax(dim=1))

    def forward(self, L: torch.Tensor, hint_ab: Optional[torch.Tensor] = None,
                hint_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        n, _, h, w = L.shape
        if h % 8 or w % 8:
            raise ValueError(f"SIGGRAPH17 needs H and W divisible by 8, got {h}x{w}")
        if hint_ab is None:
            hint_ab = L.new_zeros(n, 2, h, w)
        if hint_mask is None:
            hint_mask = L.new_zeros(n, 1, h, w)
        x = torch.cat((self.normalize_l(L), self.normalize_ab(hint_ab), hint_mask), dim=1)
        c1 = self.model1(x)
        c2 = self.model2(c1[:, :, ::2, ::2])
        c3 = self.model3(c2[:, :, ::2, ::2])
        c4 = self.model4(c3[:, :, ::2, ::2])
        c7 = self.model7(self.model6(self.model5(c4)))
        c8 = self.model8(self.model8up(c7) + self.model3short8(c3))
        c9 = self.model9(self.model9up(c8) + self.model2short9(c2))
        c10 = self.model10(self.model10up(c9) + self.model1short10(c1))
        return self.unnormalize_ab(self.model_out(c10))


Hint = Tuple[float, float, Tuple[float, float, float]]


def hints_to_maps(hints: Iterable[Hint], image_hw: Tuple[int, int], size: Tuple[int, int],
                  radius: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """User hints -> SIGGRAPH17 inputs at the model's size.

    Args:
        hints: ``(x, y, (r, g, b))`` in the original image's pixel coordinates,
            colour as uint8-range RGB. Only the colour's ab is used (L comes from the photo).
        image_hw: (H, W) of the original image.
        size: (h, w) the model runs at.
        radius: half side of the square patch painted per hint, in model pixels.

    Returns:
        ``hint_ab (1, 2, h, w)`` in Lab units and ``hint_mask (1, 1, h, w)`` in {0, 1}.
    """
    H, W = image_hw
    h, w = size
    ab = torch.zeros(1, 2, h, w)
    mask = torch.zeros(1, 1, h, w)
    for x, y, rgb in hints:
        if not (0 <= x < W and 0 <= y < H):
            raise ValueError(f"hint at ({x}, {y}) is outside the {W}x{H} image")
        rgb_t = torch.tensor(rgb, dtype=torch.float32).clamp(0, 255).view(1, 3, 1, 1) / 255.0
        hint_ab = color.rgb_to_lab(rgb_t)[0, 1:, 0, 0]
        cx, cy = int(x * w / W), int(y * h / H)
        ys, xs = slice(max(cy - radius, 0), cy + radius + 1), slice(max(cx - radius, 0), cx + radius + 1)
        ab[0, :, ys, xs] = hint_ab.view(2, 1, 1)
        mask[0, :, ys, xs] = 1.0
    return ab, mask


@register_model(kind="classification", temperature=True, weights=ECCV16_WEIGHTS,
                paper="Zhang, Isola, Efros. Colorful Image Colorization. ECCV 2016.",
                description="VGG-style net predicting a distribution over 313 quantized ab bins, trained with "
                            "class rebalancing; decoded by the annealed mean (T=0.38 as released).")
def eccv16(pretrained=False, temperature: float = color.T_RELEASED, **kwargs) -> ECCV16:
    return ECCV16(temperature=temperature).load_pretrained(ECCV16_WEIGHTS, pretrained)


@register_model(kind="regression", hints=True, weights=SIGGRAPH17_WEIGHTS,
                paper="Zhang et al. Real-Time User-Guided Image Colorization with Learned Deep Priors. SIGGRAPH 2017.",
                description="U-Net with shortcut connections regressing ab; accepts user colour hints "
                            "(points with colours); automatic when none are given.")
def siggraph17(pretrained=False, **kwargs) -> SIGGRAPH17:
    return SIGGRAPH17().load_pretrained(SIGGRAPH17_WEIGHTS, pretrained)
