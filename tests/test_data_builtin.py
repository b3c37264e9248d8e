"""Checks on the shipped `builtin` evaluation set (colorbench/data/builtin)."""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BUILTIN = Path(__file__).resolve().parents[1] / "colorbench" / "data" / "builtin"
FIELDS = {"id", "file", "source", "license", "width", "height", "sha256", "imagenet_label", "imagenet_name"}
MIN_CHROMA = 10.0  # mean of max(R,G,B)-min(R,G,B); grayscale is ~0-3


@pytest.fixture(scope="module")
def items():
    return json.loads((BUILTIN / "items.json").read_text())


@pytest.fixture(scope="module")
def images(items):
    out = {}
    for it in items:
        with Image.open(BUILTIN / it["file"]) as im:
            out[it["id"]] = np.asarray(im.convert("RGB"))
    return out


def test_count_and_fields(items):
    assert 24 <= len(items) <= 40
    ids = [it["id"] for it in items]
    assert len(set(ids)) == len(ids)
    for it in items:
        assert set(it) == FIELDS, it["id"]
        assert it["source"] and it["license"]
        assert it["file"] == Path(it["file"]).name  # no directories
        assert (it["imagenet_label"] is None) == (it["imagenet_name"] is None), it["id"]


def test_no_stray_files(items):
    listed = {it["file"] for it in items}
    on_disk = {p.name for p in BUILTIN.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}}
    assert on_disk == listed


def test_files_match_manifest(items):
    for it in items:
        path = BUILTIN / it["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == it["sha256"], it["id"]
        with Image.open(path) as im:
            assert im.size == (it["width"], it["height"]), it["id"]
            assert im.mode == "RGB", it["id"]


def test_size_limits(items):
    for it in items:
        assert max(it["width"], it["height"]) <= 512, it["id"]
        assert min(it["width"], it["height"]) >= 128, it["id"]


def test_every_image_is_colour(images):
    for item_id, a in images.items():
        a = a.astype(np.int16)
        chroma = float((a.max(axis=2) - a.min(axis=2)).mean())
        assert chroma > MIN_CHROMA, f"{item_id}: mean chroma {chroma:.1f}"


def _imagenet_categories():
    """torchvision's ImageNet-1k names (the list behind ResNet18_Weights.IMAGENET1K_V1.meta).

    Read from torchvision/models/_meta.py without importing torch (keeps the test fast);
    falls back to importing torchvision.
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        pytest.skip("torchvision not installed")
    meta = Path(spec.origin).parent / "models" / "_meta.py"
    try:
        for node in ast.parse(meta.read_text()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "_IMAGENET_CATEGORIES":
                return list(ast.literal_eval(node.value))
    except (OSError, SyntaxError, ValueError):
        pass
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def test_imagenet_labels_match_torchvision(items):
    labelled = [it for it in items if it["imagenet_label"] is not None]
    assert labelled, "expected some labelled items"
    cats = _imagenet_categories()
    assert len(cats) == 1000
    for it in labelled:
        idx = it["imagenet_label"]
        assert isinstance(idx, int) and 0 <= idx < 1000, it["id"]
        assert cats[idx] == it["imagenet_name"], f"{it['id']}: {idx} is {cats[idx]!r}, not {it['imagenet_name']!r}"


def _hashes(a: np.ndarray, n: int = 16):
    g = Image.fromarray(a).convert("L")
    s = np.asarray(g.resize((n, n), Image.BOX), dtype=np.float32)
    d = np.asarray(g.resize((n + 1, n), Image.BOX), dtype=np.float32)
    return (s > s.mean()).ravel(), (d[:, 1:] > d[:, :-1]).ravel()


def test_no_near_duplicates(images):
    hashes = {k: _hashes(a) for k, a in images.items()}
    for a, b in itertools.combinations(hashes, 2):
        da = int(np.count_nonzero(hashes[a][0] != hashes[b][0]))
        dd = int(np.count_nonzero(hashes[a][1] != hashes[b][1]))
        # Resized / re-encoded copies of one photo are within ~5 (ahash) and ~15 (dhash)
        # of 256 bits; the closest unrelated pair in this set is at 54 / 76.
        assert da > 26 or dd > 45, f"{a} and {b} look like near-duplicates ({da}, {dd})"
