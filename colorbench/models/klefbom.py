"""Klefbom & Mjöberg: ResNet-18-stem regression and the biased ensemble.

* ``resnet18_regression``: the first layers of ResNet-18 (conv1, bn, maxpool,
  layer1, layer2; torchvision's layout) on the L channel, a decoder of 3x3
  convolutions with nearest-neighbour upsampling back to full size, tanh output
  scaled to ab; MSE loss, Adam lr 1e-3.
* ``biased_ensemble``: the equal-weight mean of member models' ab. The paper
  trains members on images biased towards one hue (blue, yellow, green) and
  combines them (BY, BGY). Members are given by registered name, by
  ``name@path/to/weights.safetensors``, or as model instances.

ImageNet weights for the ResNet-18 stem come from torchvision when they can be
downloaded (``encoder_pretrained=True``); offline the stem starts from random
initialisation, and :attr:`ResNet18Regression.encoder_init` records which.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..weights import WeightsSpec
from . import register_model
from .base import Colorizer

log = logging.getLogger(__name__)

_PAPER = ("Klefbom & Mjöberg. Automatic colorization of grayscale images with biased ensembles "
          "(KTH degree project, 2019).")


def _shipped(name: str) -> WeightsSpec:
    return WeightsSpec(filename=f"{name}.safetensors", license="MIT (trained by this project)")


RESNET18_WEIGHTS = _shipped("resnet18_regression")
#: single-hue members of the biased ensemble, shipped after a short training each
MEMBER_WEIGHTS = {hue: _shipped(f"resnet18_regression_{hue}") for hue in ("blue", "yellow", "green")}
COMBINATIONS = {"BY": ("blue", "yellow"), "BGY": ("blue", "green", "yellow")}


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ResNet18Regression(Colorizer):
    """ResNet-18 stem (to layer2, stride 8, 128 channels) + nearest-upsampling decoder + tanh.

    ``forward(L)``: L in [0, 100] ``(N, 1, H, W)``, H and W multiples of 8 -> ab ``(N, 2, H, W)``
    in [-110, 110].
    """

    input_size = 224

    def __init__(self, encoder_pretrained: bool = False) -> None:
        super().__init__()
        import torchvision

        net = torchvision.models.resnet18(weights=None)
        self.encoder_init = "random"
        if encoder_pretrained:
            try:
                w = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
                net.load_state_dict(w.get_state_dict(progress=False))
                self.encoder_init = "imagenet (torchvision)"
            except Exception as e:  # offline
                log.warning("ResNet-18 ImageNet weights unavailable (%s); random init", type(e).__name__)
        conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        with torch.no_grad():  # grayscale input: sum the RGB filters (exact for R = G = B)
            conv1.weight.copy_(net.conv1.weight.sum(1, keepdim=True))
        self.encoder = nn.Sequential(conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2)
        self.decoder = nn.Sequential(
            _conv(128, 128), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(128, 64), _conv(64, 64), nn.Upsample(scale_factor=2, mode="nearest"),
            _conv(64, 32), _conv(32, 32), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(32, 2, 3, padding=1), nn.Tanh(),
        )

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.encoder(self.normalize_l(L)))
        if out.shape[-2:] != L.shape[-2:]:
            out = F.interpolate(out, size=L.shape[-2:], mode="bilinear", align_corners=False)
        return self.unnormalize_ab(out)

    def training_loss(self, L: torch.Tensor, ab: torch.Tensor, rebalance: bool = False):
        from ..train.losses import mse

        loss = mse(self.normalize_ab(self(L)), self.normalize_ab(ab), rebalance=rebalance)
        return loss, {}


class BiasedEnsemble(Colorizer):
    """Equal-weight mean of member colorizers' ab. ``forward(L)`` -> ab ``(N, 2, H, W)``."""

    input_size = 224

    def __init__(self, members: Sequence[Colorizer]) -> None:
        super().__init__()
        if not members:
            raise ValueError("a biased ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.weights_id = "+".join(getattr(m, "weights_id", "?") for m in members)

    def forward(self, L: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(L) for m in self.members]).mean(0)


def _member(spec: Union[str, Colorizer], pretrained) -> Colorizer:
    if isinstance(spec, nn.Module):
        return spec
    from . import create_model

    name, _, path = spec.partition("@")
    return create_model(name, pretrained=path or pretrained)


@register_model(kind="regression", weights=RESNET18_WEIGHTS, paper=_PAPER,
                description="The first layers of ResNet-18 (to layer2) on L, a decoder of 3x3 convolutions with "
                            "nearest-neighbour upsampling, tanh scaled to ab; trained with MSE and Adam (lr 1e-3). "
                            "The stem starts from ImageNet weights when torchvision can download them, else from "
                            "random init (the shipped weights: random init, see the model card).")
def resnet18_regression(pretrained=False, encoder_pretrained: bool = False, **kwargs) -> ResNet18Regression:
    return ResNet18Regression(encoder_pretrained=encoder_pretrained and not pretrained).load_pretrained(
        RESNET18_WEIGHTS, pretrained)


def _hue_member(hue: str):
    spec = MEMBER_WEIGHTS[hue]

    def factory(pretrained=False, **kwargs) -> ResNet18Regression:
        return ResNet18Regression().load_pretrained(spec, pretrained)

    factory.__name__ = f"resnet18_regression_{hue}"
    return register_model(factory, kind="regression", weights=spec, paper=_PAPER,
                          description=f"A biased-ensemble member: resnet18_regression trained only on the corpus "
                                      f"photos whose mean Lab hue is {hue}.")


resnet18_regression_blue = _hue_member("blue")
resnet18_regression_yellow = _hue_member("yellow")
resnet18_regression_green = _hue_member("green")


def _ensemble(combination: str, members: Optional[Sequence[Union[str, Colorizer]]], pretrained) -> BiasedEnsemble:
    if members is None:
        if combination not in COMBINATIONS:
            raise ValueError(f"unknown combination {combination!r}; known: {sorted(COMBINATIONS)}")
        members = [f"resnet18_regression_{h}" for h in COMBINATIONS[combination]]
    return BiasedEnsemble([_member(m, pretrained) for m in members])


@register_model(kind="ensemble", paper=_PAPER,
                description="Biased ensemble, BY combination: the equal-weight mean of the ab of two "
                            "resnet18_regression members trained on blue-biased and yellow-biased photos. "
                            "Other members can be given by name or name@weights-file.")
def biased_ensemble(pretrained=False, members: Optional[Sequence[Union[str, Colorizer]]] = None,
                    combination: str = "BY", **kwargs) -> BiasedEnsemble:
    return _ensemble(combination, members, pretrained)


@register_model(kind="ensemble", paper=_PAPER,
                description="Biased ensemble, BGY combination: the mean of the blue-, green- and yellow-biased "
                            "resnet18_regression members.")
def biased_ensemble_bgy(pretrained=False, members: Optional[Sequence[Union[str, Colorizer]]] = None,
                        **kwargs) -> BiasedEnsemble:
    return _ensemble("BGY", members, pretrained)
