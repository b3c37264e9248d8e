"""Safe image input: anything a user can hand us -> RGB uint8 ``(H, W, 3)``.

Every failure raises :class:`ImageError` (a ``ValueError``) with a sentence a person
understands. The pixel limit is checked from the header, before any decoding, so
decompression bombs are refused without allocating their pixels.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "load_image", "DEFAULT_MAX_PIXELS", "ACCEPTED_FORMATS", "encode_png"]

DEFAULT_MAX_PIXELS = int(os.environ.get("COLORBENCH_MAX_PIXELS", 40_000_000))
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "MPO")
MAX_FILE_BYTES = int(os.environ.get("COLORBENCH_MAX_FILE_BYTES", 200 * 1024 * 1024))

ImageFile.LOAD_TRUNCATED_IMAGES = False

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray]


class ImageError(ValueError):
    """The input is not an image this service can use; the message says why."""


def _open(src: ImageSource) -> Image.Image:
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"No such image file: {path}")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"The file {path.name} is empty.")
        if size > MAX_FILE_BYTES:
            raise ImageError(f"The file {path.name} is {size / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MB.")
        data = path.read_bytes()
    else:
        data = bytes(src)
        if not data:
            raise ImageError("The uploaded file is empty.")
        if len(data) > MAX_FILE_BYTES:
            raise ImageError(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_FILE_BYTES / 2**20:.0f} MB.")
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            "This file is not an image we can read (accepted: PNG, JPEG, WebP, BMP, TIFF, GIF)."
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"The image is too large to open safely: {e}") from None
    except Exception as e:  # malformed headers make PIL raise all sorts of things
        raise ImageError(f"The image header is damaged and cannot be read ({type(e).__name__}).") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") or arr.max() > 255 else (0.0, 255.0)
        arr = np.clip((arr - lo) / (hi - lo) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")  # L, P, CMYK, YCbCr, 1, LAB, HSV


def load_image(src: ImageSource, max_pixels: int | None = None) -> np.ndarray:
    """Load and validate an image.

    Args:
        src: a path, encoded bytes, a PIL image or an array (``HxW``, ``HxWx3`` or
            ``HxWx4``, uint8 or float in [0, 1]).
        max_pixels: refuse images with more pixels than this (default 40 MP,
            ``COLORBENCH_MAX_PIXELS``); checked before decoding.

    Returns:
        ``uint8 HxWx3`` RGB, EXIF orientation applied, alpha composited on white.

    Raises:
        ImageError: for empty, truncated, non-image, oversized or damaged input.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)
    if isinstance(src, np.ndarray):
        return _from_array(src, limit)
    img = src if isinstance(src, Image.Image) else _open(src)
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError("The image has no pixels.")
    if w * h > limit:
        raise ImageError(f"The image is {w}x{h} = {w * h / 1e6:.1f} MP; the limit is {limit / 1e6:.0f} MP.")
    if img.format and img.format not in ACCEPTED_FORMATS:
        raise ImageError(f"{img.format} images are not accepted (accepted: PNG, JPEG, WebP, BMP, TIFF, GIF).")
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)  # animated GIF/WebP/TIFF: first frame
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img) or img
            if img.size[0] * img.size[1] > limit:
                raise ImageError("The image is larger than the limit after orientation.")
            rgb = _to_rgb(img)
            arr = np.asarray(rgb, dtype=np.uint8)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        msg = str(e).lower()
        if "truncated" in msg or "end of file" in msg or isinstance(e, EOFError) or "broken data stream" in msg:
            raise ImageError("The image file is truncated or incomplete; please upload it again.") from None
        raise ImageError(f"The image data is damaged and cannot be decoded ({type(e).__name__}: {e}).") from None
    except Exception as e:  # any decoder bug must not escape as a crash
        raise ImageError(f"The image could not be decoded ({type(e).__name__}).") from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError("The image could not be converted to RGB.")
    return np.ascontiguousarray(arr)


def _from_array(arr: np.ndarray, limit: int) -> np.ndarray:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"An image array must be HxW, HxWx3 or HxWx4; got shape {arr.shape}.")
    if arr.shape[0] * arr.shape[1] > limit:
        raise ImageError(f"The image has {arr.shape[0] * arr.shape[1] / 1e6:.1f} MP; the limit is {limit / 1e6:.0f} MP.")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ImageError(f"Image arrays must be uint8 or float in [0, 1]; got {arr.dtype}.")
        if not np.isfinite(arr).all():
            raise ImageError("The image array contains NaN or infinite values.")
        arr = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = (arr[:, :, :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    elif arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 ``HxWx3`` -> PNG bytes with no metadata (same path for every stimulus)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()
