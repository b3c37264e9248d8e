"""On-disk cache of predictions: one lossless PNG per (model, weights, dataset, size, item).

Layout::

    <root>/<model>/<weights_id>/<dataset fingerprint>-s<size>-p<pipeline version>/<item id>.png

Writes are atomic (a temporary file in the same folder, flushed and fsynced, then
``os.replace``), so a killed run leaves either the complete file or nothing; a
leftover temporary file is never read. A file that is nevertheless unreadable
(truncated, wrong size, not a PNG) is treated as absent, deleted and recomputed.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote

import numpy as np

log = logging.getLogger(__name__)

#: bump when the prediction path changes in a way that alters pixels
PIPELINE_VERSION = "2"  # 2: model input = L of the bicubic-resized RGB (was resized L)

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def safe_name(name: str) -> str:
    """A file-system-safe, reversible spelling of ``name`` (percent-encoding, no slashes)."""
    if name in ("", ".", ".."):
        return name.replace(".", "%2E") or "%00"
    return name if _SAFE.match(name) else quote(name, safe="")


class PredictionCache:
    """Predictions of one model (with given weights) on one dataset at one evaluation size.

    Args:
        root: cache root (default of the CLI: ``cache/predictions``).
        model: registry name of the model.
        weights_id: identifies the weights (``Colorizer.weights_id``).
        dataset_fingerprint: ``Dataset.fingerprint``.
        size: evaluation side in pixels.
    """

    def __init__(self, root: Union[str, os.PathLike], model: str, weights_id: str, dataset_fingerprint: str,
                 size: int) -> None:
        self.size = int(size)
        self.dir = (Path(root) / safe_name(model) / safe_name(weights_id)
                    / f"{safe_name(dataset_fingerprint)}-s{self.size}-p{PIPELINE_VERSION}")

    def path(self, item_id: str) -> Path:
        return self.dir / (safe_name(item_id) + ".png")

    def get(self, item_id: str) -> Optional[np.ndarray]:
        """The cached uint8 ``(size, size, 3)`` prediction, or None if absent or unusable."""
        p = self.path(item_id)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            return None
        arr = self._decode(data)
        if arr is None:
            log.warning("discarding unusable cache file %s", p)
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        return arr

    def _decode(self, data: bytes) -> Optional[np.ndarray]:
        if not (data.startswith(_PNG_MAGIC) and data.endswith(_PNG_END)):
            return None
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode != "RGB" or im.size != (self.size, self.size):
                    return None
                return np.asarray(im, dtype=np.uint8).copy()
        except Exception:  # any decoding problem means "not cached"
            return None

    def put(self, item_id: str, rgb: np.ndarray) -> Path:
        """Store uint8 ``(size, size, 3)`` atomically; returns the final path."""
        if rgb.dtype != np.uint8 or rgb.shape != (self.size, self.size, 3):
            raise ValueError(f"expected uint8 {(self.size, self.size, 3)}, got {rgb.dtype} {rgb.shape}")
        from ..io import encode_png

        dest = self.path(item_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, encode_png(rgb))
        return dest


def atomic_write_bytes(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` so that readers see either the old file or the whole new one."""
    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 honours the umask (mkstemp would make the file private: 0600)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(dest: Path, text: str) -> None:
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(dest), text.encode("utf-8"))
