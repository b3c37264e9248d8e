"""Finding, verifying and loading model weights.

Resolution order for a model's weights (first hit wins):

1. an explicit path (``create_model(name, pretrained="/path/file")``);
2. the environment variable named by the spec (e.g. ``COLORBENCH_ECCV16_WEIGHTS``);
3. weights shipped in this repository's ``weights/`` folder, listed in
   ``weights/manifest.json`` with their sha256;
4. the standard torch hub cache (``$TORCH_HOME/hub/checkpoints``);
5. a download from the pinned URL (or hub id), hash-checked, into that cache.

Offline, step 5 fails at once with :class:`WeightsUnavailable`, whose message names
the URL and where to put the file. Third-party ``.pth`` checkpoints are read with
``torch.load(weights_only=True)``; everything this project writes is safetensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import torch

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DOWNLOAD_TIMEOUT = float(os.environ.get("COLORBENCH_DOWNLOAD_TIMEOUT", 10))


class WeightsUnavailable(RuntimeError):
    """Weights could not be found locally nor downloaded; the message says what to do."""


class WeightsCorrupted(RuntimeError):
    """A weights file does not match its pinned hash or cannot be parsed."""


@dataclass(frozen=True)
class WeightsSpec:
    """Where a model's weights come from.

    Attributes:
        filename: the file name in caches and in ``weights/``.
        sha256: full hex digest, or a prefix of it (the 8-hex-digit convention of
            torch hub file names such as ``siggraph17-df00044c.pth``).
        url: download address, or None.
        hub_id: ``repo_id/filename`` on a model hub, or None.
        env: environment variable that may hold a local path.
        license: licence of the weights.
    """

    filename: str
    sha256: Optional[str] = None
    url: Optional[str] = None
    hub_id: Optional[str] = None
    env: Optional[str] = None
    license: str = ""


def sha256_file(path: os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_dir() -> Path:
    return Path(os.environ.get("COLORBENCH_WEIGHTS_DIR", REPO_ROOT / "weights"))


def cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def read_manifest(folder: Optional[Path] = None) -> Dict[str, dict]:
    path = (folder or weights_dir()) / "manifest.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def verify(path: Path, expected: Optional[str]) -> None:
    if not expected:
        return
    digest = sha256_file(path)
    if not digest.startswith(expected.lower()):
        raise WeightsCorrupted(
            f"{path} has sha256 {digest[:16]}…, expected {expected[:16]}…: the file is corrupted or not the "
            "pinned release. Delete it and try again."
        )


def _shipped(spec: WeightsSpec) -> Optional[Path]:
    folder = weights_dir()
    manifest = read_manifest(folder)
    entry = manifest.get(spec.filename)
    path = folder / spec.filename
    if not path.is_file():
        return None
    expected = (entry or {}).get("sha256") or spec.sha256
    if entry is None and spec.sha256 is None:
        raise WeightsCorrupted(f"{path} is not listed in {folder / 'manifest.json'}; refusing unlisted weights.")
    verify(path, expected)
    return path


def _download(url: str, dest: Path, expected: Optional[str]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as r, tempfile.NamedTemporaryFile(
            dir=dest.parent, delete=False
        ) as tmp:
            shutil.copyfileobj(r, tmp)
            tmp_path = Path(tmp.name)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise WeightsUnavailable(str(e)) from None
    try:
        verify(tmp_path, expected)
    except WeightsCorrupted:
        tmp_path.unlink(missing_ok=True)
        raise
    os.replace(tmp_path, dest)
    return dest


def resolve(spec: WeightsSpec, path: Optional[os.PathLike] = None, download: bool = True) -> Path:
    """Return a verified local file for ``spec`` (see the module docstring for the order)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise WeightsUnavailable(f"weights file not found: {p}")
        verify(p, spec.sha256)
        return p
    if spec.env and os.environ.get(spec.env):
        p = Path(os.environ[spec.env])
        if not p.is_file():
            raise WeightsUnavailable(f"{spec.env}={p} does not point to a file")
        verify(p, spec.sha256)
        return p
    shipped = _shipped(spec)
    if shipped is not None:
        return shipped
    cached = cache_dir() / spec.filename
    if cached.is_file():
        verify(cached, spec.sha256)
        return cached
    where = f"put the file at {cached}" + (f" or set {spec.env}=/path/to/{spec.filename}" if spec.env else "")
    if not download or (spec.url is None and spec.hub_id is None):
        raise WeightsUnavailable(f"weights {spec.filename} are not available locally; {where}.")
    errors = []
    if spec.hub_id:
        try:
            from huggingface_hub import hf_hub_download

            repo_id, _, fname = spec.hub_id.rpartition("/")
            p = Path(hf_hub_download(repo_id, fname, etag_timeout=DOWNLOAD_TIMEOUT))
            verify(p, spec.sha256)
            return p
        except WeightsCorrupted:
            raise
        except Exception as e:  # offline, missing repo, ...
            errors.append(f"hub {spec.hub_id}: {type(e).__name__}")
    if spec.url:
        try:
            return _download(spec.url, cached, spec.sha256)
        except WeightsUnavailable as e:
            errors.append(f"{spec.url}: {e}")
    raise WeightsUnavailable(
        f"could not download weights {spec.filename} ({'; '.join(errors)}). Offline? Download {spec.url or spec.hub_id} "
        f"elsewhere and {where}."
    )


def load_state_dict(path: os.PathLike) -> Dict[str, torch.Tensor]:
    """Read a state dict: safetensors, or a ``.pth`` with ``weights_only=True`` (never full pickle)."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsCorrupted(f"cannot read weights {path}: {type(e).__name__}: {e}") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsCorrupted(f"{path} does not hold a state dict")
    return sd


def save_safetensors(state_dict: Dict[str, torch.Tensor], path: os.PathLike, metadata: Optional[Dict[str, str]] = None) -> str:
    """Write safetensors atomically; returns its sha256."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in state_dict.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return sha256_file(path)


def add_to_manifest(path: os.PathLike, **info) -> dict:
    """Record a shipped weights file (sha256 plus any info) in ``manifest.json`` beside it."""
    path = Path(path)
    man_path = path.parent / "manifest.json"
    manifest = json.loads(man_path.read_text()) if man_path.is_file() else {}
    entry = {"sha256": sha256_file(path), "bytes": path.stat().st_size, **info}
    manifest[path.name] = entry
    tmp = man_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, man_path)
    return entry
