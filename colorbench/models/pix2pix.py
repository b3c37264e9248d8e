"""pix2pix for colorization (Gunnam et al., after Isola et al. 2017).

* Generator: U-Net with 8 stride-2 downsamplings (256 -> 1), skip connections
  between mirrored layers; encoder blocks conv(4x4, s2)-BatchNorm-LeakyReLU(0.2)
  (no norm in the first), decoder blocks ReLU-deconv(4x4, s2)-BatchNorm with
  dropout 0.5 in the three innermost decoder blocks (the "noise" of the cGAN),
  tanh output scaled to ab.
* Discriminator: 70x70 PatchGAN on (L, ab): C64-C128-C256-C512 then a 1-channel
  conv; no normalisation in the first and the last block.
* Loss: cGAN (binary cross-entropy on logits) + lambda * L1, lambda = 100;
  Adam lr 2e-4, betas (0.5, 0.999).

``ngf`` / ``ndf`` (64 in the paper) set the widths; the shipped weights use
narrower ones (see the card). Dropout is applied only in training mode, so
outputs are deterministic at inference (the paper keeps it at test time too;
``test_dropout=True`` restores that).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

PIX2PIX_WEIGHTS = WeightsSpec(filename="pix2pix.safetensors", license="MIT (trained by this project)")
_PAPER = ("Gunnam et al. (colorization with conditional GANs), after Isola, Zhu, Zhou, Efros. Image-to-Image "
          "Translation with Conditional Adversarial Networks (pix2pix). CVPR 2017.")
#: widths of the shipped (CPU-trained) weights
SHIPPED_NGF = 16
SHIPPED_NDF = 16


class UNetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels: 1 channel (L) -> 2 channels (ab in [-1, 1])."""

    def __init__(self, ngf: int = 64, num_downs: int = 8, test_dropout: bool = False) -> None:
        super().__init__()
        self.test_dropout = test_dropout
        chans = [min(ngf * 2**i, ngf * 8) for i in range(num_downs)]  # 64,128,256,512,512,512,512,512
        self.down = nn.ModuleList()
        cin = 1
        for i, c in enumerate(chans):
            layers: List[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, True)]
            layers.append(nn.Conv2d(cin, c, 4, 2, 1, bias=False if 0 < i < num_downs - 1 else True))
            if 0 < i < num_downs - 1:  # no norm in the first and the innermost block
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers))
            cin = c
        self.up = nn.ModuleList()
        self.dropout_blocks = set()
        for j in range(num_downs - 1, -1, -1):  # innermost first
            c_in = chans[j] if j == num_downs - 1 else chans[j] * 2
            c_out = chans[j - 1] if j > 0 else 2
            layers = [nn.ReLU(True), nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=j == 0)]
            if j > 0:
                layers.append(nn.BatchNorm2d(c_out))
            self.up.append(nn.Sequential(*layers))
            if 1 <= num_downs - 1 - j <= 3:  # the three blocks after the innermost
                self.dropout_blocks.add(len(self.up) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
        skips.pop()  # the innermost output is x itself
        for k, u in enumerate(self.up):
            x = u(x)
            if k in self.dropout_blocks:
                x = F.dropout(x, 0.5, training=self.training or self.test_dropout)
            if skips:
                x = torch.cat((x, skips.pop()), dim=1)
        return torch.tanh(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN on the 3-channel (L, a, b) image -> a map of real/fake logits."""

    def __init__(self, ndf: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),  # no norm in the first block
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 1, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 1),  # no norm in the last block
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Pix2Pix(Colorizer):
    """Generator (used by ``forward``) plus its PatchGAN discriminator (used in training only).

    ``forward(L)``: L in [0, 100] ``(N, 1, 256, 256)`` (H, W multiples of 2**num_downs) -> ab.
    """

    input_size = 256

    def __init__(self, ngf: int = 64, ndf: int = 64, num_downs: int = 8, l1_lambda: float = 100.0,
                 test_dropout: bool = False) -> None:
        super().__init__()
        self.num_downs = num_downs
        self.l1_lambda = l1_lambda
        self.generator = UNetGenerator(ngf, num_downs, test_dropout)
        self.discriminator = PatchDiscriminator(ndf)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        m = 2**self.num_downs
        h, w = L.shape[-2:]
        x = self.normalize_l(L) * 2.0  # [-1, 1]
        if h % m or w % m:
            x = F.interpolate(x, size=(max(m, round(h / m) * m), max(m, round(w / m) * m)), mode="bilinear",
                              align_corners=False)
        ab = self.generator(x)
        if ab.shape[-2:] != (h, w):
            ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
        return self.unnormalize_ab(ab)

    # -- training: two optimizers ---------------------------------------------------
    def configure_optimizers(self, lr: float, weight_decay: float = 0.0) -> List[torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return [torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)]

    def _d(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat((self.normalize_l(L) * 2.0, self.normalize_ab(ab)), dim=1))

    def validation_loss(self, L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """L1 of the generator (normalised ab units), the comparable part of the objective."""
        return F.l1_loss(self.normalize_ab(self(L)), self.normalize_ab(ab))

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor):
        """Generator objective only (cGAN + lambda * L1); see :meth:`train_step` for the full update."""
        fake = self(L)
        logits = self._d(L, fake)
        gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        l1 = F.l1_loss(self.normalize_ab(fake), self.normalize_ab(ab))
        return gan + self.l1_lambda * l1, {"g_gan": float(gan.detach()), "l1": float(l1.detach())}

    def train_step(self, L: torch.Tensor, ab: torch.Tensor, opts: List[torch.optim.Optimizer]) -> Dict[str, float]:
        opt_g, opt_d = opts
        fake = self(L)
        # discriminator: real -> 1, fake -> 0 (halved, as in pix2pix)
        for p in self.discriminator.parameters():
            p.requires_grad_(True)
        real_logits = self._d(L, ab)
        fake_logits = self._d(L, fake.detach())
        d_loss = 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        # generator: fool D + lambda * L1
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        logits = self._d(L, fake)
        g_gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        l1 = F.l1_loss(self.normalize_ab(fake), self.normalize_ab(ab))
        g_loss = g_gan + self.l1_lambda * l1
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        for p in self.discriminator.parameters():
            p.requires_grad_(True)
        return {"loss": float(g_loss.detach()), "d_loss": float(d_loss.detach()), "g_gan": float(g_gan.detach()),
                "l1": float(l1.detach())}


@register_model(kind="gan", weights=PIX2PIX_WEIGHTS, paper=_PAPER,
                description="pix2pix: a U-Net generator with 8 downsamplings (256 -> 1) and skip connections, "
                            "dropout as the noise source, trained against a 70x70 PatchGAN discriminator with the "
                            "cGAN loss plus 100 x L1. The shipped weights are a narrow variant (ngf = ndf = 16) "
                            "trained briefly on CPU.")
def pix2pix(pretrained=False, ngf: Optional[int] = None, ndf: Optional[int] = None, num_downs: int = 8,
            test_dropout: bool = False, **kwargs) -> Pix2Pix:
    model = Pix2Pix(ngf or (SHIPPED_NGF if pretrained else 64), ndf or (SHIPPED_NDF if pretrained else 64),
                    num_downs, test_dropout=test_dropout)
    return model.load_pretrained(PIX2PIX_WEIGHTS, pretrained)
