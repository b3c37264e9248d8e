"""Stimuli: for each photo, a "real" and one "fake" per model, built by the identical path.

::

    photo ─► load_image ─► centre crop + resize to S x S (once) ─► rgb_S
    rgb_S ─► pipeline.lightness ─► L ─┬─► pipeline.recombine(L, ab of rgb_S)  = real
                                      └─► pipeline.colorize_batch(rgb_S, model) = fake
                                           (lightness(rgb_S) ─► model ─► recombine(L, ab_model))
    each ─► io.encode_png (no metadata) ─► stimuli/<random id>.png

So the two images of a pair share the same resize, the same L (bitwise: the same
function on the same array), the same Lab->RGB conversion and the same PNG encoder;
only ab differs. Files are named by random ids; which id is real lives only in the
manifest on the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from .config import StudyConfig

__all__ = ["BuiltStudy", "build_stimuli", "load_built", "study_dir", "prepare_photo", "render_real", "StimuliCache"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REAL = "real"


def study_dir(root: Path, config: StudyConfig) -> Path:
    """Where a config's stimuli are built under ``root`` (one folder per stimulus key)."""
    return Path(root) / f"{config.name}-{config.stimulus_key()}"


def prepare_photo(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to ``size x size`` (Lanczos). uint8 ``HxWx3`` -> uint8 ``SxSx3``."""
    from PIL import Image, ImageOps

    img = Image.fromarray(rgb, mode="RGB")
    if img.size == (size, size):
        return np.ascontiguousarray(rgb)
    out = ImageOps.fit(img, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return np.array(out, dtype=np.uint8)


def render_real(rgb_s: np.ndarray) -> np.ndarray:
    """The "real" image of a pair: ``recombine(lightness(rgb_s), ab(rgb_s))``.

    Args:
        rgb_s: the resized photo, uint8 ``SxSx3``.

    Returns:
        uint8 ``SxSx3``: the photo re-rendered through the same Lab->RGB path as the fakes.
    """
    import torch

    from .. import color
    from ..pipeline import lightness, recombine

    L = lightness(rgb_s)
    lab = color.rgb_to_lab(torch.from_numpy(rgb_s).permute(2, 0, 1)[None])
    return recombine(L, lab[:, 1:])


def _model_available(name: str) -> Tuple[bool, str]:
    from ..pipeline import get_model

    try:
        get_model(name)
    except Exception as e:  # WeightsUnavailable, WeightsCorrupted, unknown name, ...
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def build_stimuli(config: StudyConfig, root: Path, force: bool = False) -> Path:
    """Build (or reuse) the stimuli of ``config`` under ``root``; returns the study folder.

    The folder is written to a temporary sibling and renamed into place, so a
    half-built study is never visible. Models whose weights are unavailable are left
    out and listed in the manifest's ``skipped``; if no model under test is left,
    :class:`RuntimeError` is raised.
    """
    from ..data import load_dataset
    from ..io import encode_png
    from ..pipeline import colorize_batch

    dest = study_dir(root, config)
    if (dest / MANIFEST).is_file() and not force:
        log.info("study stimuli already built: %s", dest)
        return dest
    dataset = load_dataset(config.dataset)
    items = list(dataset)[: config.n_images] if config.n_images else list(dataset)
    if len(items) < 2:
        raise RuntimeError(f"dataset {config.dataset!r} has fewer than two images")
    skipped: Dict[str, str] = {}
    models: List[str] = []
    for name in (*config.models, config.vigilance_model):
        ok, why = _model_available(name)
        if ok:
            models.append(name)
        else:
            skipped[name] = why
            log.warning("study %s: model %s left out (%s)", config.name, name, why)
    under_test = [m for m in models if m != config.vigilance_model]
    if not under_test:
        raise RuntimeError(f"no model of study {config.name!r} is available: {skipped}")
    if config.vigilance_model in skipped and config.n_vigilance:
        raise RuntimeError(f"the vigilance model {config.vigilance_model!r} is unavailable: {skipped}")

    Path(root).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=root))
    try:
        (tmp / "stimuli").mkdir()
        photos = [prepare_photo(it.rgb, config.image_size) for it in items]
        table: Dict[str, Dict[str, str]] = {it.id: {} for it in items}
        sha: Dict[str, str] = {}

        def put(image_id: str, kind: str, rgb: np.ndarray) -> None:
            png = encode_png(rgb)
            sid = secrets.token_hex(16)
            (tmp / "stimuli" / f"{sid}.png").write_bytes(png)
            table[image_id][kind] = sid
            sha[sid] = hashlib.sha256(png).hexdigest()

        for it, rgb_s in zip(items, photos):
            put(it.id, REAL, render_real(rgb_s))
        for name in models:
            log.info("study %s: colorizing %d images with %s", config.name, len(items), name)
            outs = colorize_batch(photos, name)
            for it, out in zip(items, outs):
                put(it.id, name, out)
        manifest = {
            "study": config.name,
            "key": config.stimulus_key(),
            "config": config.to_dict(),
            "image_size": config.image_size,
            "images": [it.id for it in items],
            "models": under_test,
            "vigilance_model": config.vigilance_model if config.vigilance_model in models else None,
            "skipped": skipped,
            "stimuli": table,
            "sha256": sha,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("study %s: %d images x (real + %d models) -> %s", config.name, len(items), len(models), dest)
    return dest


@dataclass
class BuiltStudy:
    """A built study folder, read-only.

    Attributes:
        path: the folder.
        manifest: the parsed ``manifest.json`` (server-side only: it says which id is real).
    """

    path: Path
    manifest: Dict

    @property
    def images(self) -> List[str]:
        return list(self.manifest["images"])

    @property
    def models(self) -> List[str]:
        return list(self.manifest["models"])

    @property
    def vigilance_model(self) -> Optional[str]:
        return self.manifest.get("vigilance_model")

    def stimulus(self, image_id: str, kind: str) -> str:
        """The stimulus id of ``image_id`` rendered as ``kind`` (``"real"`` or a model name)."""
        return self.manifest["stimuli"][image_id][kind]

    def png(self, sid: str) -> bytes:
        if not (len(sid) == 32 and all(c in "0123456789abcdef" for c in sid)):
            raise ValueError("bad stimulus id")
        return (self.path / "stimuli" / f"{sid}.png").read_bytes()

    def data_url(self, sid: str) -> str:
        """``data:image/png;base64,...``: the bytes only, no name travels with them."""
        return "data:image/png;base64," + base64.b64encode(self.png(sid)).decode("ascii")


def load_built(path: Path) -> BuiltStudy:
    p = Path(path)
    return BuiltStudy(p, json.loads((p / MANIFEST).read_text()))


class StimuliCache:
    """Builds a config's stimuli once per process on first use (thread-safe), then reuses them."""

    def __init__(self, config: StudyConfig, root: Path) -> None:
        self.config = config
        self.root = Path(root)
        self._lock = threading.Lock()
        self._built: Optional[BuiltStudy] = None

    def get(self) -> BuiltStudy:
        with self._lock:
            if self._built is None:
                self._built = load_built(build_stimuli(self.config, self.root))
            return self._built
