"""ColorBench: image colorization models, metrics, benchmark and human study.

Importing this package loads no weights, touches no network and does not even
import torch: the public names below are resolved on first use.
"""

from __future__ import annotations

from ._lazy import lazy_api


__version__ = "0.1.0"

_API = {
    "colorize": "colorbench.pipeline",
    "colorize_batch": "colorbench.pipeline",
    "get_model": "colorbench.pipeline",
    "create_model": "colorbench.models",
    "list_models": "colorbench.models",
    "model_info": "colorbench.models",
    "register_model": "colorbench.models",
    "load_image": "colorbench.io",
    "ImageError": "colorbench.io",
    "WeightsUnavailable": "colorbench.weights",
    "WeightsCorrupted": "colorbench.weights",
}

__all__ = ["__version__", *_API]


__getattr__, __dir__ = lazy_api(__name__, _API, globals())
