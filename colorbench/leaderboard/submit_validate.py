"""Validation of submitted files, before anything is loaded or run.

Everything here reads bytes and headers only: a checkpoint is never unpickled
(``torch.load`` is never called on a submission), a zip is never extracted to
disk, an image's size is read from its header before it is decoded. Every
refusal raises :class:`SubmissionRefused` with a sentence that says why.

Three kinds of files are checked:

* **safetensors checkpoints** — :func:`read_safetensors_header` parses the
  8-byte length + JSON header, refuses pickle / ``torch.save`` zip files by
  their magic bytes, and checks that the tensors tile the data region exactly;
  :func:`check_state_dict_shapes` compares names, shapes and dtype kinds with an
  architecture's ``state_dict``.
* **prediction zips** — :func:`check_predictions_zip` checks every entry name
  (no absolute paths, no ``..``, no backslashes, one optional top folder), the
  entry type (no symlinks or devices: the Unix mode bits in ``external_attr``),
  encryption, compression method, entry count, total uncompressed size and
  compression ratio (zip bombs), and that the names are exactly the expected
  PNG files of a dataset's item list.
* **model cards** — :func:`parse_model_card`: required front-matter fields and a
  non-empty description.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Dict, Mapping, Optional, Tuple

__all__ = [
    "SubmissionRefused",
    "Limits",
    "TensorInfo",
    "ModelCard",
    "read_safetensors_header",
    "safetensors_content_hash",
    "check_state_dict_shapes",
    "check_file_size",
    "check_predictions_zip",
    "prediction_filename",
    "parse_model_card",
    "check_submitter",
    "read_zip_png",
    "CARD_TEMPLATE",
]


class SubmissionRefused(ValueError):
    """A submission failed validation; the message says why (shown to the submitter)."""


@dataclass(frozen=True)
class Limits:
    """Limits applied to every submission.

    Attributes:
        max_checkpoint_bytes: largest safetensors file accepted.
        max_header_bytes: largest safetensors JSON header.
        max_zip_bytes: largest predictions zip (compressed, on disk).
        max_uncompressed_bytes: largest total of the zip's declared entry sizes.
        max_ratio: largest uncompressed/compressed ratio of any entry and of the whole zip
            (PNG files barely compress; a bomb compresses a thousandfold).
        max_entries: most entries (files and folders) in a zip.
        max_image_pixels: most pixels in one predicted image.
        max_card_bytes: longest model card.
        rate_limit: most submissions per submitter within ``rate_window_s``.
        rate_window_s: the rate-limit window in seconds.
    """

    max_checkpoint_bytes: int = 1 << 30
    max_header_bytes: int = 16 << 20
    max_zip_bytes: int = 512 << 20
    max_uncompressed_bytes: int = 2 << 30
    max_ratio: float = 50.0
    max_entries: int = 100_000
    max_image_pixels: int = 4_000_000
    max_card_bytes: int = 64 << 10
    rate_limit: int = 5
    rate_window_s: float = 24 * 3600.0


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def check_file_size(path: Path, limit: int, what: str) -> int:
    """Refuse an empty file or one larger than ``limit`` bytes (from ``stat``, nothing is read)."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionRefused(f"The {what} file was not found.")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionRefused(f"The {what} file is empty.")
    if size > limit:
        raise SubmissionRefused(f"The {what} is {_mb(size)}; the limit is {_mb(limit)}.")
    return size


# --------------------------------------------------------------------------- safetensors

#: safetensors dtype -> (bytes per element, kind); kind "f" floating, "i" integer, "b" bool
_ST_DTYPES: Dict[str, Tuple[int, str]] = {
    "F64": (8, "f"), "F32": (4, "f"), "F16": (2, "f"), "BF16": (2, "f"),
    "I64": (8, "i"), "I32": (4, "i"), "I16": (2, "i"), "I8": (1, "i"), "U8": (1, "i"),
    "BOOL": (1, "b"),
}

_PICKLE_HINT = ("Only safetensors checkpoints are accepted: save with "
                "`safetensors.torch.save_file(model.state_dict(), 'model.safetensors')`.")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str
    shape: Tuple[int, ...]
    begin: int  # offset in the data region
    end: int

    @property
    def kind(self) -> str:
        return _ST_DTYPES[self.dtype][1]


def _sniff_not_safetensors(head: bytes) -> Optional[str]:
    """A sentence naming a known unsafe format from the first bytes, or None."""
    if head[:4] == b"PK\x03\x04":
        return "This file is a zip archive (the `torch.save` format, which unpickles code when loaded); it is refused."
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "This file is a Python pickle (it can run code when loaded); it is refused."
    return None


def read_safetensors_header(path: Path, limits: Limits = Limits()) -> Tuple[Dict[str, TensorInfo], Dict[str, str], int]:
    """Parse and check a safetensors file's header without loading any tensor.

    Returns:
        ``(tensors by name, the ``__metadata__`` dict, the data region's offset in the file)``.

    Raises:
        SubmissionRefused: not safetensors (pickle, zip, truncated, malformed), an unknown
            dtype, or tensors that do not exactly tile the data region.
    """
    size = check_file_size(path, limits.max_checkpoint_bytes, "checkpoint")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SubmissionRefused("The checkpoint is too short to be a safetensors file.")
        sniff = _sniff_not_safetensors(head)
        if sniff:
            raise SubmissionRefused(sniff + " " + _PICKLE_HINT)
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > limits.max_header_bytes or 8 + n > size:
            raise SubmissionRefused("The checkpoint is not a valid safetensors file (bad header length). " + _PICKLE_HINT)
        raw = f.read(n)
    if not raw.lstrip().startswith(b"{"):
        raise SubmissionRefused("The checkpoint is not a valid safetensors file (its header is not JSON). " + _PICKLE_HINT)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise SubmissionRefused("The checkpoint's safetensors header is not valid JSON.") from None
    if not isinstance(header, dict):
        raise SubmissionRefused("The checkpoint's safetensors header is not a JSON object.")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise SubmissionRefused("The checkpoint's __metadata__ must map strings to strings.")
    data_len = size - 8 - n
    tensors: Dict[str, TensorInfo] = {}
    for name, spec in header.items():
        if not isinstance(spec, dict):
            raise SubmissionRefused(f"Tensor {name!r}: malformed header entry.")
        dtype, shape, offs = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
        if dtype not in _ST_DTYPES:
            raise SubmissionRefused(f"Tensor {name!r}: dtype {dtype!r} is not accepted "
                                    f"(accepted: {', '.join(sorted(_ST_DTYPES))}).")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)):
            raise SubmissionRefused(f"Tensor {name!r}: malformed shape or data offsets.")
        begin, end = offs
        nbytes = math.prod(shape) * _ST_DTYPES[dtype][0]
        if not 0 <= begin <= end <= data_len or end - begin != nbytes:
            raise SubmissionRefused(f"Tensor {name!r}: its data offsets do not match its shape or the file size "
                                    "(truncated or forged file).")
        tensors[name] = TensorInfo(name, dtype, tuple(shape), begin, end)
    # the tensors must tile the data region exactly: no gaps, no overlaps, no trailing bytes
    pos = 0
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin != pos:
            raise SubmissionRefused("The checkpoint's tensors overlap or leave gaps in the data (forged file).")
        pos = t.end
    if pos != data_len:
        raise SubmissionRefused("The checkpoint has trailing bytes after its tensors (forged or corrupted file).")
    return tensors, {str(k): str(v) for k, v in meta.items()}, 8 + n


def safetensors_content_hash(path: Path, tensors: Mapping[str, TensorInfo], data_offset: int) -> str:
    """sha256 of the tensors themselves (names, dtypes, shapes, bytes; in name order).

    Two files holding the same tensors get the same hash even if their metadata
    or tensor order differ, so re-uploading a checkpoint is recognised.
    """
    h = hashlib.sha256(b"colorbench-safetensors-v1\0")
    with open(path, "rb") as f:
        for name in sorted(tensors):
            t = tensors[name]
            h.update(json.dumps([name, t.dtype, list(t.shape)]).encode() + b"\0")
            f.seek(data_offset + t.begin)
            left = t.end - t.begin
            while left:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    raise SubmissionRefused("The checkpoint is truncated.")
                h.update(chunk)
                left -= len(chunk)
    return h.hexdigest()


def _torch_kind(dtype) -> str:
    if dtype.is_floating_point:
        return "f"
    return "b" if str(dtype) == "torch.bool" else "i"


def check_state_dict_shapes(tensors: Mapping[str, TensorInfo], reference: Mapping, arch: str) -> None:
    """Refuse unless ``tensors`` has exactly the reference state dict's names, shapes and dtype kinds.

    Args:
        tensors: from :func:`read_safetensors_header`.
        reference: ``create_model(arch).state_dict()`` (name -> tensor).
        arch: the architecture's name, for messages.
    """
    missing = sorted(set(reference) - set(tensors))
    unexpected = sorted(set(tensors) - set(reference))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise SubmissionRefused(f"The checkpoint's keys do not match architecture {arch!r}: {'; '.join(parts)}.")
    for name, ref in reference.items():
        t = tensors[name]
        if tuple(ref.shape) != t.shape:
            raise SubmissionRefused(f"Tensor {name!r} has shape {list(t.shape)}; architecture {arch!r} "
                                    f"expects {list(ref.shape)}.")
        if _torch_kind(ref.dtype) != t.kind:
            raise SubmissionRefused(f"Tensor {name!r} has dtype {t.dtype}; architecture {arch!r} expects "
                                    f"{str(ref.dtype).replace('torch.', '')}.")


# --------------------------------------------------------------------------- zips

_IMAGE_SUFFIX = re.compile(r"\.(png|jpe?g|webp|bmp|tiff?|gif)$", re.IGNORECASE)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def prediction_filename(item_id: str) -> str:
    """The zip entry name expected for a dataset item: its id with any image suffix replaced by ``.png``.

    ``opencv_dog`` -> ``opencv_dog.png``; ``sub/cat.jpg`` -> ``sub/cat.png``.
    """
    return _IMAGE_SUFFIX.sub("", item_id) + ".png"


def _check_entry_name(name: str) -> PurePosixPath:
    if not name or "\x00" in name or any(ord(c) < 32 for c in name):
        raise SubmissionRefused(f"Zip entry {name!r} has an empty name or control characters.")
    if "\\" in name:
        raise SubmissionRefused(f"Zip entry {name!r} contains a backslash; use '/' separators.")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionRefused(f"Zip entry {name!r} is an absolute path.")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SubmissionRefused(f"Zip entry {name!r} leaves its folder ('..', '.' or an empty path component).")
    return PurePosixPath(*parts)


def _entry_type(info: zipfile.ZipInfo) -> str:
    """``"file"``, ``"dir"`` or a refusal for links, devices, fifos and Windows reparse points."""
    mode = (info.external_attr >> 16) & 0xFFFF
    ftype = stat.S_IFMT(mode)
    if ftype == stat.S_IFLNK:
        raise SubmissionRefused(f"Zip entry {info.filename!r} is a symbolic link; links are refused.")
    if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise SubmissionRefused(f"Zip entry {info.filename!r} is not a regular file (mode {oct(mode)}).")
    if info.external_attr & 0x400:  # FILE_ATTRIBUTE_REPARSE_POINT (Windows symlink/junction)
        raise SubmissionRefused(f"Zip entry {info.filename!r} is a link (reparse point); links are refused.")
    if ftype == stat.S_IFDIR or info.filename.endswith("/") or info.external_attr & 0x10:
        if info.file_size:
            raise SubmissionRefused(f"Zip entry {info.filename!r} is a folder with data.")
        return "dir"
    return "file"


def _png_size(head: bytes, name: str) -> Tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; refuses anything that is not an 8-bit RGB PNG."""
    if len(head) < 33 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        raise SubmissionRefused(f"{name} is not a PNG file.")
    w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if depth != 8 or ctype not in (2, 6):
        raise SubmissionRefused(f"{name} must be an 8-bit RGB PNG (got bit depth {depth}, colour type {ctype}).")
    return w, h


def check_predictions_zip(path: Path, expected: Mapping[str, Tuple[int, int]],
                          limits: Limits = Limits()) -> Dict[str, str]:
    """Check a predictions zip against the names and sizes it must contain.

    Args:
        path: the zip file.
        expected: PNG entry name (see :func:`prediction_filename`) -> ``(width, height)``
            at the evaluation size.
        limits: size, count and ratio limits.

    Returns:
        expected name -> the entry's name inside the zip (entries may sit in one top folder).

    Raises:
        SubmissionRefused: for any unsafe entry, a zip bomb, or names and image sizes that
            do not match ``expected``.
    """
    size = check_file_size(path, limits.max_zip_bytes, "predictions zip")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SubmissionRefused(f"The predictions file is not a valid zip archive ({e}).") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise SubmissionRefused(f"The zip has {len(infos)} entries; the limit is {limits.max_entries}.")
        total = 0
        files: Dict[PurePosixPath, zipfile.ZipInfo] = {}
        seen = set()
        for info in infos:
            rel = _check_entry_name(info.filename)
            kind = _entry_type(info)
            key = str(rel).lower()
            if key in seen:
                raise SubmissionRefused(f"Zip entry {info.filename!r} appears twice.")
            seen.add(key)
            if info.flag_bits & 0x1:
                raise SubmissionRefused(f"Zip entry {info.filename!r} is encrypted.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise SubmissionRefused(f"Zip entry {info.filename!r} uses an unsupported compression method "
                                        f"({info.compress_type}); use stored or deflate.")
            if kind == "dir":
                continue
            total += info.file_size
            if total > limits.max_uncompressed_bytes:
                raise SubmissionRefused(f"The zip's contents exceed {_mb(limits.max_uncompressed_bytes)} "
                                        "uncompressed; refused.")
            if info.file_size > max(info.compress_size, 1) * limits.max_ratio:
                raise SubmissionRefused(f"Zip entry {info.filename!r} has a compression ratio above "
                                        f"{limits.max_ratio:g} (zip bomb?); refused.")
            files[rel] = info
        if total > max(size, 1) * limits.max_ratio:
            raise SubmissionRefused(f"The zip's compression ratio is above {limits.max_ratio:g} (zip bomb?); refused.")
        # one optional top folder: strip it if every entry sits in the same one
        tops = {r.parts[0] for r in files if len(r.parts) > 1}
        prefix = None
        if len(tops) == 1 and all(len(r.parts) > 1 for r in files):
            prefix = next(iter(tops))
            if prefix + ".png" in expected or any(n.startswith(prefix + "/") for n in expected):
                prefix = None  # the folder is part of the dataset's own item names
        names: Dict[str, str] = {}
        for rel, info in files.items():
            inner = PurePosixPath(*rel.parts[1:]) if prefix else rel
            names[str(inner)] = info.filename
        missing = sorted(set(expected) - set(names))
        extra = sorted(set(names) - set(expected))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
            if extra:
                parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
            raise SubmissionRefused(f"The zip must hold exactly one PNG per item of the dataset "
                                    f"({len(expected)} files): {'; '.join(parts)}.")
        for name, (w, h) in expected.items():
            info = zf.getinfo(names[name])
            with zf.open(info) as f:
                head = f.read(33)
            got = _png_size(head, name)
            if got[0] * got[1] > limits.max_image_pixels:
                raise SubmissionRefused(f"{name} is {got[0]}x{got[1]}; the limit is {limits.max_image_pixels} pixels.")
            if got != (w, h):
                raise SubmissionRefused(f"{name} is {got[0]}x{got[1]}; the evaluation size of this item is {w}x{h}.")
    return names


def read_zip_png(zf: zipfile.ZipFile, entry: str, max_bytes: int):
    """Decode one PNG entry (already validated) to uint8 ``HxWx3``; reads at most ``max_bytes``."""
    from ..io import load_image

    with zf.open(entry) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SubmissionRefused(f"{entry} is larger than its declared size.")
    return load_image(data)


# --------------------------------------------------------------------------- cards, names

REQUIRED_CARD_FIELDS = ("model_name", "license")
MIN_DESCRIPTION_CHARS = 20

CARD_TEMPLATE = """---
model_name: my-colorizer
license: mit
paper: https://...            # optional
training_data: ImageNet train # optional
---
What the model is, how it was trained, and anything needed to reproduce it.
"""


@dataclass(frozen=True)
class ModelCard:
    fields: Dict[str, str]
    description: str
    text: str

    @property
    def model_name(self) -> str:
        return self.fields["model_name"]


def parse_model_card(text: Optional[str], limits: Limits = Limits()) -> ModelCard:
    """Parse a model card: ``---``-delimited ``key: value`` front matter, then a description.

    Required: the fields ``model_name`` (letters, digits, ``._-``; at most 64) and
    ``license``, and a description of at least 20 characters.
    """
    if text is None or not text.strip():
        raise SubmissionRefused("A model card is required (see the template): model_name, license and a description.")
    if len(text.encode("utf-8")) > limits.max_card_bytes:
        raise SubmissionRefused(f"The model card is longer than {limits.max_card_bytes // 1024} KB.")
    lines = text.strip().splitlines()
    fields: Dict[str, str] = {}
    body = lines
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        except StopIteration:
            raise SubmissionRefused("The model card's front matter is not closed by a '---' line.") from None
        for line in lines[1:end]:
            line = re.sub(r"\s+#.*$", "", line).strip()
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise SubmissionRefused(f"Model card front matter line {line!r} is not 'key: value'.")
            fields[key.strip().lower()] = value.strip().strip("'\"")
        body = lines[end + 1:]
    description = "\n".join(body).strip()
    missing = [k for k in REQUIRED_CARD_FIELDS if not fields.get(k)]
    if missing:
        raise SubmissionRefused(f"The model card is missing required field(s): {', '.join(missing)}.")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fields["model_name"]):
        raise SubmissionRefused("model_name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    if len(description) < MIN_DESCRIPTION_CHARS:
        raise SubmissionRefused(f"The model card needs a description of at least {MIN_DESCRIPTION_CHARS} characters "
                                "after the front matter.")
    return ModelCard(fields, description, text)


def check_submitter(name: Optional[str]) -> str:
    """A submitter name: 1-64 printable characters, trimmed."""
    name = (name or "").strip()
    if not name:
        raise SubmissionRefused("A submitter name is required.")
    if len(name) > 64 or not name.isprintable():
        raise SubmissionRefused("The submitter name must be at most 64 printable characters.")
    return name
