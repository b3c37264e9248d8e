"""Colorization models behind one registry.

Every model is an ``nn.Module`` (a :class:`~colorbench.models.base.Colorizer`)
whose ``forward(L)`` takes ``L in [0, 100]`` shaped ``(N, 1, H, W)`` and returns
``ab`` in Lab units shaped ``(N, 2, H, W)``. Add a family as one file in this
folder with ``@register_model`` factories and list the module in ``_FAMILIES``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from ..registry import Registry

_FAMILIES = [
    "colorbench.models.baselines",
    "colorbench.models.zhang",
    "colorbench.models.lite",
    "colorbench.models.klefbom",
    "colorbench.models.hwang",
    "colorbench.models.pix2pix",
    "colorbench.models.eccv16_train",
]

MODELS = Registry("model", _FAMILIES)

#: the model the app and the CLI use when none is named: this project's own small
#: model, trained here and shipped in ``weights/`` (works offline).
DEFAULT_MODEL = "colorbench_lite0"


def register_model(fn=None, **meta):
    """Register a factory ``fn(pretrained=False, **kw) -> Colorizer`` under its name.

    Meta keys used by the app and the leaderboard: ``paper``, ``description``,
    ``kind`` ("baseline" | "classification" | "regression" | "gan" | "ensemble"),
    ``hints`` (bool), ``temperature`` (bool), ``weights`` (a WeightsSpec or None).
    """
    return MODELS.register(fn, **meta)


def list_models() -> List[str]:
    return MODELS.names()


def model_info(name: str) -> Dict[str, Any]:
    return MODELS.meta(name)


def create_model(name: str, pretrained: Union[bool, str] = False, **kwargs: Any):
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        pretrained: False (random init), True (resolve published or shipped
            weights; may raise ``WeightsUnavailable``), or a path to a weights file.
    """
    model = MODELS(name, pretrained=pretrained, **kwargs)
    model.registry_name = name
    return model.eval()


__all__ = ["DEFAULT_MODEL", "MODELS", "register_model", "list_models", "create_model", "model_info"]
