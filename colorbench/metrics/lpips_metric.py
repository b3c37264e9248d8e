"""LPIPS (Zhang et al., CVPR 2018) with the ``lpips`` package, AlexNet trunk by default.

The package ships its calibrated linear layers, but its trunk is torchvision's
ImageNet network, which it would download itself (through torchvision, with no
timeout and no hash check). Here the trunk weights go through
:func:`colorbench.weights.resolve` instead (explicit path / env variable / cache /
pinned URL with a short timeout and a sha256 check) and are loaded into an
``lpips.LPIPS`` built with ``pnet_rand=True``. When the trunk weights cannot be
had, constructing the metric raises :class:`MetricUnavailable` naming the file
and the URL, so the runner records LPIPS as missing: never zero, never a random trunk.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from ..weights import WeightsCorrupted, WeightsSpec, WeightsUnavailable, load_state_dict, resolve
from . import EvalBatch, Metric, MetricUnavailable, register_metric

log = logging.getLogger(__name__)

LPIPS_VERSION = "0.1"

#: torchvision's ImageNet trunks (the files torchvision itself would fetch; sha256 prefixes as in their names)
TRUNK_WEIGHTS: Dict[str, WeightsSpec] = {
    "alex": WeightsSpec(
        filename="alexnet-owt-7be5be79.pth",
        sha256="7be5be79",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        env="COLORBENCH_ALEXNET_WEIGHTS",
        license="BSD-3-Clause (torchvision)",
    ),
    "vgg": WeightsSpec(
        filename="vgg16-397923af.pth",
        sha256="397923af",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        env="COLORBENCH_VGG16_WEIGHTS",
        license="BSD-3-Clause (torchvision)",
    ),
    "squeeze": WeightsSpec(
        filename="squeezenet1_1-b8a52dc0.pth",
        sha256="b8a52dc0",
        url="https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        env="COLORBENCH_SQUEEZENET_WEIGHTS",
        license="BSD-3-Clause (torchvision)",
    ),
}

LpipsNet = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# -----------------------------------------------------------------------------
# pure function
# -----------------------------------------------------------------------------
def to_lpips_input(rgb: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> float32 in [-1, 1] (LPIPS' input convention)."""
    return rgb.float().div_(127.5).sub_(1.0)


@torch.inference_mode()
def lpips_distance(pred_rgb: np.ndarray | torch.Tensor, gt_rgb: np.ndarray | torch.Tensor, net: LpipsNet,
                   batch_size: int = 16) -> np.ndarray:
    """Per-image LPIPS distance ``(N,)`` (>= 0, lower is better, 0 for identical images).

    Args:
        pred_rgb, gt_rgb: uint8 ``(N, H, W, 3)`` numpy arrays, or uint8 ``(N, 3, H, W)`` tensors.
        net: an ``lpips.LPIPS`` module (or anything with its ``forward(in0, in1)``
            taking images in [-1, 1] and returning ``(N, 1, 1, 1)``).
        batch_size: images per forward pass.
    """
    p = _as_nchw(pred_rgb)
    g = _as_nchw(gt_rgb)
    if p.shape != g.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and ground truth {tuple(g.shape)} differ in shape")
    out = []
    for s in range(0, p.shape[0], batch_size):
        d = net(to_lpips_input(p[s : s + batch_size]), to_lpips_input(g[s : s + batch_size]))
        out.append(d.reshape(d.shape[0], -1).mean(1).double())
    return torch.cat(out).numpy() if out else np.zeros(0)


def _as_nchw(rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(rgb, torch.Tensor):
        t = rgb
    else:
        arr = np.asarray(rgb)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) images, got {arr.shape}")
        t = torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2)
    if t.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {t.dtype}")
    return t


# -----------------------------------------------------------------------------
# loading
# -----------------------------------------------------------------------------
def _trunk_state(net: "torch.nn.Module", sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """torchvision ``features.<i>.<p>`` keys -> lpips' ``slice<k>.<i>.<p>`` keys, every one checked."""
    out = {}
    for key, ref in net.state_dict().items():
        _, idx, param = key.split(".", 2)
        src = sd.get(f"features.{idx}.{param}")
        if src is None or tuple(src.shape) != tuple(ref.shape):
            raise WeightsCorrupted(f"trunk weights lack features.{idx}.{param} of shape {tuple(ref.shape)}")
        out[key] = src
    return out


@functools.lru_cache(maxsize=None)
def load_lpips(net: str = "alex") -> "torch.nn.Module":
    """``lpips.LPIPS`` (v0.1, calibrated linear layers) with the verified ImageNet trunk ``net``.

    Cached. Raises :class:`MetricUnavailable` (with the reason) when the trunk weights
    cannot be found locally nor downloaded, or the ``lpips`` package is missing.
    """
    if net not in TRUNK_WEIGHTS:
        raise KeyError(f"unknown LPIPS trunk {net!r}; known: {sorted(TRUNK_WEIGHTS)}")
    spec = TRUNK_WEIGHTS[net]
    try:  # first the weights: offline this fails within the download timeout, before any heavy import
        path = resolve(spec)
        sd = load_state_dict(path)
    except (WeightsUnavailable, WeightsCorrupted) as e:
        raise MetricUnavailable(
            f"LPIPS ({net}) needs torchvision's ImageNet trunk {spec.filename} ({spec.url}): {e}"
        ) from None
    try:
        import lpips
    except ImportError as e:
        raise MetricUnavailable(f"LPIPS needs the lpips package (pip install lpips): {e}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained is deprecated"
        model = lpips.LPIPS(pretrained=True, net=net, version=LPIPS_VERSION, pnet_rand=True, verbose=False)
    try:
        model.net.load_state_dict(_trunk_state(model.net, sd), strict=True)
    except WeightsCorrupted as e:
        raise MetricUnavailable(f"LPIPS ({net}): {path}: {e}") from None
    log.info("LPIPS %s trunk loaded from %s", net, path)
    return model.eval()


# -----------------------------------------------------------------------------
# accumulator
# -----------------------------------------------------------------------------
@register_metric(higher_is_better=False)
class Lpips(Metric):
    """LPIPS accumulator; rows: one distance per image, value: mean over images.

    Args:
        net: trunk, ``"alex"`` (default, as the LPIPS authors recommend), ``"vgg"`` or ``"squeeze"``.
        batch_size: images per forward pass.
        model: an already-built LPIPS-like module (tests, custom trunks); then ``net``
            only names it in the results.

    Raises:
        MetricUnavailable: at construction, when the trunk weights cannot be had.
    """

    name = "lpips"
    version = "1"
    definition = (
        "LPIPS v0.1 (lpips package, calibrated linear layers) with torchvision's ImageNet AlexNet trunk: "
        "distance between prediction and ground truth (uint8 sRGB scaled to [-1, 1]), spatially averaged; "
        "mean over images. Lower is better."
    )

    def __init__(self, net: str = "alex", batch_size: int = 16, model: Optional[torch.nn.Module] = None) -> None:
        self.net_name = net
        self.batch_size = int(batch_size)
        self.model = model if model is not None else load_lpips(net)
        self.custom = model is not None
        super().__init__()

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        d = lpips_distance(batch.rgb_t("pred"), batch.rgb_t("gt"), self.model, self.batch_size)
        return d[:, None]

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        trunk = "custom" if self.custom else TRUNK_WEIGHTS[self.net_name].filename
        return {"lpips_net": self.net_name, "lpips_version": LPIPS_VERSION, "lpips_trunk": trunk}


__all__ = ["TRUNK_WEIGHTS", "LPIPS_VERSION", "to_lpips_input", "lpips_distance", "load_lpips", "Lpips"]
