"""Safe image loading: accepted formats and modes, and every kind of bad file."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from colorbench.io import ImageError, load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 48 * 64 * 3).reshape(48, 64, 3)
    return (base * 0.7 + rng.integers(0, 60, base.shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_roundtrip(photo, fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image(_encode(Image.fromarray(photo), fmt, **kw))
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert np.array_equal(out, photo)


def test_jpeg_close(photo):
    data = _encode(Image.fromarray(photo), "JPEG", quality=95)
    out = load_image(data)
    assert np.array_equal(out, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_gif_first_frame(photo):
    frames = [Image.fromarray(photo).convert("P"), Image.fromarray(255 - photo).convert("P")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = load_image(buf.getvalue())
    first = np.asarray(frames[0].convert("RGB"))
    assert np.array_equal(out, first)


def test_exif_orientation_applied(photo, tmp_path):
    img = Image.fromarray(photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rot.jpg"
    img.save(path, format="JPEG", quality=95, exif=exif)
    out = load_image(path)
    assert out.shape == (photo.shape[1], photo.shape[0], 3)
    ref = np.rot90(np.asarray(Image.open(path).convert("RGB")), k=-1)
    assert np.abs(out.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16"])
def test_any_mode_to_rgb(photo, mode):
    if mode == "I;16":
        arr = (photo[..., 0].astype(np.uint16) * 257)
        img = Image.fromarray(arr)  # uint16 -> I;16
        data = _encode(img, "PNG")
        out = load_image(data)
        assert out.shape == photo.shape
        assert np.array_equal(out[..., 0], photo[..., 0]) and np.array_equal(out[..., 0], out[..., 2])
        return
    img = Image.fromarray(photo).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = load_image(_encode(img, fmt))
    assert out.shape == photo.shape and out.dtype == np.uint8
    if mode == "RGBA":
        assert np.array_equal(out, photo)  # opaque alpha: unchanged


def test_transparent_pixels_composited_on_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    out = load_image(_encode(Image.fromarray(rgba), "PNG"))
    assert np.all(out == 255)


def test_inputs_path_bytes_pil_array(photo, tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(photo).save(p)
    for src in (p, str(p), p.read_bytes(), Image.open(p), photo, photo.astype(np.float32) / 255.0):
        assert np.array_equal(load_image(src), photo)


# -- bad input: one documented exception, a readable message, no hang -----------------
def _png_bytes(photo):
    return _encode(Image.fromarray(photo), "PNG")


def test_empty(tmp_path):
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(p)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="No such"):
        load_image(tmp_path / "nope.png")


def test_not_an_image():
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"hello, this is a text file\n" * 10)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(photo, fmt):
    data = _encode(Image.fromarray(photo), fmt)
    with pytest.raises(ImageError, match="truncated|damaged"):
        load_image(data[: len(data) // 2])


def test_lying_header_extension(tmp_path, photo):
    p = tmp_path / "photo.jpg"  # says JPEG, is a zip
    p.write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    with pytest.raises(ImageError):
        load_image(p)


def test_lying_header_dimensions(photo):
    data = bytearray(_png_bytes(photo))
    # IHDR claims 4000x4000 but the pixel data is for 64x48; fix the CRC so only the lie remains
    struct.pack_into(">II", data, 16, 4000, 4000)
    crc = zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF
    struct.pack_into(">I", data, 29, crc)
    with pytest.raises(ImageError):
        load_image(bytes(data))


def test_garbage_after_magic():
    with pytest.raises(ImageError):
        load_image(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def test_decompression_bomb_refused_before_decoding():
    bomb = _encode(Image.new("L", (12000, 12000)), "PNG")  # 144 MP of zeros, ~140 kB on disk
    assert len(bomb) < 1_000_000
    with pytest.raises(ImageError, match="limit|too large"):
        load_image(bomb)
    with pytest.raises(ImageError, match="limit"):
        load_image(_encode(Image.new("RGB", (300, 300)), "PNG"), max_pixels=50_000)


def test_bad_arrays():
    with pytest.raises(ImageError):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ImageError):
        load_image(np.zeros((5, 5, 2), np.uint8))
    with pytest.raises(ImageError):
        load_image(np.full((5, 5, 3), np.nan, np.float32))
