"""The common base of every colorization model."""

from __future__ import annotations

import hashlib
import os
from typing import Optional, Union

import torch
from torch import nn

from .. import color
from ..weights import WeightsSpec, load_state_dict, resolve, sha256_file


class Colorizer(nn.Module):
    """Base class: ``forward(L)`` with ``L in [0, 100]`` ``(N, 1, H, W)`` -> ab ``(N, 2, H, W)``.

    Class attributes the pipeline reads:
        input_size: side of the square the model runs at (the pipeline resizes L to it).
        supports_hints: forward accepts ``hint_ab`` ``(N, 2, H, W)`` and ``hint_mask`` ``(N, 1, H, W)``.
        supports_temperature: forward accepts ``T`` (annealed-mean temperature).
    """

    input_size: int = 256
    supports_hints: bool = False
    supports_temperature: bool = False
    #: identifies the weights a model carries, for prediction caches
    weights_id: str = "random-init"

    l_cent = color.L_CENT
    l_norm = color.L_NORM
    ab_norm = color.AB_NORM

    def normalize_l(self, L: torch.Tensor) -> torch.Tensor:
        return (L - self.l_cent) / self.l_norm

    def normalize_ab(self, ab: torch.Tensor) -> torch.Tensor:
        return ab / self.ab_norm

    def unnormalize_ab(self, ab: torch.Tensor) -> torch.Tensor:
        return ab * self.ab_norm

    def load_pretrained(self, spec: Optional[WeightsSpec], pretrained: Union[bool, str, os.PathLike]) -> "Colorizer":
        """Load weights for ``pretrained`` (True: resolve ``spec``; a path: that file), strictly."""
        if pretrained is False or pretrained is None:
            return self
        if spec is None and pretrained is True:
            raise ValueError(f"{type(self).__name__} has no published weights; pass a file path")
        if pretrained is True:
            path = resolve(spec)
        else:  # an explicit file is the caller's own (e.g. fine-tuned): no release hash to match
            path = resolve(WeightsSpec(filename=os.path.basename(str(pretrained))), pretrained)
        self.load_state_dict(load_state_dict(path), strict=True)
        self.weights_id = sha256_file(path)[:16]
        return self


def state_dict_id(model: nn.Module) -> str:
    """A short content hash of a model's parameters and buffers."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
