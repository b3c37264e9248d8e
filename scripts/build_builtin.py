#!/usr/bin/env python
"""Rebuild ``colorbench/data/builtin/`` from the packages its photographs come from.

The ``builtin`` evaluation set is a small, fixed list of colour photographs that
ship inside two packages:

* Debian's ``opencv-doc`` (OpenCV sample data; fetched with ``apt-get download``
  and unpacked with ``dpkg -x`` into a work directory -- nothing is installed);
* the scikit-image wheel (``skimage/data``, the files bundled with the wheel;
  nothing is downloaded from skimage's remote data registry).

Each photograph is converted to RGB, resized so that its longest side is at
most 512 px (aspect kept, Lanczos), and written as a high-quality JPEG
(quality 95, no chroma subsampling) to keep the repository small.
``items.json`` records provenance, licence, size, sha256 and an ImageNet-1k
label where one clearly applies.

Usage::

    python scripts/build_builtin.py                    # rebuild in place
    python scripts/build_builtin.py --opencv-root DIR  # reuse an unpacked opencv-doc
    python scripts/build_builtin.py --check            # rebuild to a temp dir and diff

The helpers at the top (``rgb_chroma``, ``ahash``, ``hamming``, ...) are also
used by ``scripts/build_corpus.py``.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT_DIR = REPO / "colorbench" / "data" / "builtin"
MAX_SIDE = 512
JPEG_KW = dict(format="JPEG", quality=95, subsampling=0, optimize=True)

OPENCV_PKG = "opencv-doc"
OPENCV_EXAMPLES = "usr/share/doc/opencv-doc/examples"

# --------------------------------------------------------------------------
# Licences, as stated by the packages themselves.
# --------------------------------------------------------------------------
LIC_OPENCV = (
    "Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright file, stanza 'Files: *'; "
    "no per-file stanza or provenance is given for the sample images)"
)
LIC_OPENCV_CONTRIB = (
    "Apache-2.0 AND BSD-3-Clause (Debian opencv-doc copyright file, stanza 'Files: *'; "
    "opencv_contrib sample image, no per-file stanza or provenance is given)"
)
LIC_SKIMAGE = {
    "astronaut": "Public domain (skimage.data.astronaut docstring: NASA, 'No known copyright "
    "restrictions, released into the public domain')",
    "chelsea": "CC0 (skimage.data.chelsea docstring: 'No copyright restrictions. CC0 by the "
    "photographer (Stefan van der Walt)')",
    "coffee": "CC0 (skimage.data.coffee docstring: 'No copyright restrictions. CC0 by the "
    "photographer (Rachel Michetti)')",
    "rocket": "Public domain (skimage.data.rocket docstring: captured by SpaceX and released "
    "in the public domain)",
    "hubble_deep_field": "Public domain (skimage.data.hubble_deep_field docstring: captured by "
    "NASA, 'may be freely used in the public domain')",
    "motorcycle_left": "No licence stated for this image (skimage.data.stereo_motorcycle "
    "docstring cites the Middlebury 2014 stereo benchmark, Scharstein et al., GCPR 2014); "
    "the scikit-image wheel's LICENSE.txt covers 'Files: *' with BSD-3-Clause",
}

# --------------------------------------------------------------------------
# The fixed selection. Chosen by eye: real colour photographs only; drawings,
# logos, paintings, renders, synthetic blur/noise, near-grayscale scenes and the
# second image of stereo / before-after pairs are left out.
# label: ImageNet-1k index only where one clearly applies (checked against
# torchvision's category list by tests/test_data_builtin.py).
# --------------------------------------------------------------------------
# (id, package, path inside the package, imagenet index or None, imagenet name or None)
SELECTION = [
    # opencv-doc: examples/data (OpenCV samples/data)
    ("opencv_aero1", OPENCV_PKG, "data/aero1.jpg", None, None),
    ("opencv_aloe", OPENCV_PKG, "data/aloeL.jpg", None, None),
    ("opencv_apple", OPENCV_PKG, "data/apple.jpg", None, None),  # red apple; 948 is Granny Smith
    ("opencv_baboon", OPENCV_PKG, "data/baboon.jpg", 372, "baboon"),  # mandrill
    ("opencv_board", OPENCV_PKG, "data/board.jpg", None, None),
    ("opencv_building", OPENCV_PKG, "data/building.jpg", None, None),
    ("opencv_swallowtail", OPENCV_PKG, "data/butterfly.jpg", None, None),  # no ImageNet class
    ("opencv_dog", OPENCV_PKG, "data/chicky_512.png", None, None),  # breed unclear
    ("opencv_notebook", OPENCV_PKG, "data/ela_original.jpg", None, None),
    ("opencv_fruits", OPENCV_PKG, "data/fruits.jpg", None, None),  # several fruits
    ("opencv_graffiti", OPENCV_PKG, "data/graf1.png", None, None),
    ("opencv_palace", OPENCV_PKG, "data/home.jpg", None, None),
    ("opencv_books", OPENCV_PKG, "data/left.jpg", None, None),
    ("opencv_leuven", OPENCV_PKG, "data/leuvenA.jpg", None, None),
    ("opencv_football", OPENCV_PKG, "data/messi5.jpg", None, None),
    ("opencv_orange", OPENCV_PKG, "data/orange.jpg", 950, "orange"),
    ("opencv_rubberwhale", OPENCV_PKG, "data/rubberwhale1.png", None, None),
    ("opencv_squirrel", OPENCV_PKG, "data/squirrel_cls.jpg", None, None),  # red squirrel, not fox squirrel
    # opencv-doc: opencv_contrib module samples
    ("opencv_plant", OPENCV_PKG, "alphamat/input_images/plant.jpg", None, None),
    ("opencv_monarch", OPENCV_PKG, "dnn_superres/butterfly.png", 323, "monarch"),
    ("opencv_bird", OPENCV_PKG, "hfs/data/000.jpg", None, None),  # European robin; 15 is American robin
    ("opencv_lake", OPENCV_PKG, "hfs/data/001.jpg", 975, "lakeside"),
    ("opencv_tree", OPENCV_PKG, "hfs/data/002.jpg", None, None),
    ("opencv_house", OPENCV_PKG, "reg/home.png", None, None),
    ("opencv_street1", OPENCV_PKG, "text/scenetext01.jpg", None, None),
    ("opencv_street3", OPENCV_PKG, "text/scenetext03.jpg", None, None),
    ("opencv_street4", OPENCV_PKG, "text/scenetext04.jpg", None, None),
    ("opencv_street6", OPENCV_PKG, "text/scenetext06.jpg", None, None),
    # scikit-image wheel: skimage/data
    ("skimage_astronaut", "scikit-image", "astronaut.png", None, None),
    ("skimage_chelsea", "scikit-image", "chelsea.png", 281, "tabby"),
    ("skimage_coffee", "scikit-image", "coffee.png", 967, "espresso"),
    ("skimage_rocket", "scikit-image", "rocket.jpg", None, None),
    ("skimage_motorcycle", "scikit-image", "motorcycle_left.png", None, None),
]

# Files from the same packages that builtin deliberately does NOT use because
# they are near-duplicates of a chosen image (other view of a stereo pair,
# edited copy, ...). build_corpus.py must exclude these too.
HELD_OUT_TWINS = [
    (OPENCV_PKG, "data/aloeR.jpg"),
    (OPENCV_PKG, "data/right.jpg"),
    (OPENCV_PKG, "data/ela_modified.jpg"),
    (OPENCV_PKG, "data/leuvenB.jpg"),
    (OPENCV_PKG, "data/graf3.png"),
    (OPENCV_PKG, "data/rubberwhale2.png"),
    (OPENCV_PKG, "data/aero3.jpg"),
    (OPENCV_PKG, "data/licenseplate_motion.jpg"),
    (OPENCV_PKG, "reg/LR_05.png"),
    (OPENCV_PKG, "reg/LR_06.png"),
    (OPENCV_PKG, "alphamat/output_mattes/plant_result.png"),
    ("scikit-image", "motorcycle_right.png"),
]


# --------------------------------------------------------------------------
# Small image helpers (shared with build_corpus.py)
# --------------------------------------------------------------------------
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: os.PathLike) -> str:
    return sha256_bytes(Path(path).read_bytes())


def load_rgb(path: os.PathLike) -> Image.Image:
    """Open any image as 8-bit RGB; transparency is composited on white."""
    im = Image.open(path)
    im.load()
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def resize_max_side(im: Image.Image, max_side: int) -> Image.Image:
    w, h = im.size
    s = max_side / max(w, h)
    if s >= 1:
        return im
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


def resize_short_side(im: Image.Image, short_side: int) -> Image.Image:
    w, h = im.size
    s = short_side / min(w, h)
    if s >= 1:
        return im
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)


def rgb_chroma(im: Image.Image | np.ndarray) -> float:
    """Mean colourfulness: mean over pixels of max(R,G,B) - min(R,G,B), 0..255.

    Grayscale images (also gray stored as RGB, with JPEG noise) score below ~3;
    ordinary colour photographs score well above 10.
    """
    a = np.asarray(im, dtype=np.int16)
    if a.ndim == 2:
        return 0.0
    a = a[..., :3]
    return float((a.max(axis=2) - a.min(axis=2)).mean())


def ahash(im: Image.Image, n: int = 16) -> np.ndarray:
    """Average hash: n*n booleans, gray thumbnail > its mean. Robust to resizing and re-encoding."""
    g = im.convert("L").resize((n, n), Image.BOX)
    a = np.asarray(g, dtype=np.float32)
    return (a > a.mean()).ravel()


def dhash(im: Image.Image, n: int = 16) -> np.ndarray:
    """Difference hash: n*n booleans, horizontal gradient sign of an (n+1) x n thumbnail."""
    g = im.convert("L").resize((n + 1, n), Image.BOX)
    a = np.asarray(g, dtype=np.float32)
    return (a[:, 1:] > a[:, :-1]).ravel()


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.count_nonzero(a != b))


def color_thumb(im: Image.Image, n: int = 8) -> np.ndarray:
    """n x n RGB thumbnail (box filter) as int16, to compare colour layout."""
    return np.asarray(im.convert("RGB").resize((n, n), Image.BOX), dtype=np.int16)


def is_near_duplicate(h1: tuple, h2: tuple, a_thr: int = 26, d_thr: int = 45, c_thr: float = 12.0) -> bool:
    """Near-duplicate when the ahash and dhash (256 bits each) agree closely AND the 8x8
    colour thumbnails differ by at most c_thr (mean absolute difference, 0..255).

    Resized / re-encoded copies are within ~5 / ~15 bits and ~3 levels. The colour
    term stops different objects with a similar silhouette on a white background
    (a thermometer and a wrench) from matching on shape alone.
    """
    if hamming(h1[0], h2[0]) > a_thr or hamming(h1[1], h2[1]) > d_thr:
        return False
    return float(np.abs(h1[2] - h2[2]).mean()) <= c_thr


def image_hashes(im: Image.Image) -> tuple:
    """(ahash, dhash, colour thumbnail) -- the inputs of is_near_duplicate."""
    return ahash(im), dhash(im), color_thumb(im)


def encode_jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, **JPEG_KW)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Package access (download + unpack, never install)
# --------------------------------------------------------------------------
def deb_fetch_extract(pkg: str, workdir: Path) -> tuple[Path, str]:
    """``apt-get download PKG`` into workdir and ``dpkg -x`` it. Returns (root, version).

    Re-uses an earlier download / extraction in the same workdir.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    debs = sorted(workdir.glob(f"{pkg}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", pkg], cwd=workdir, check=True)
        debs = sorted(workdir.glob(f"{pkg}_*.deb"))
        if not debs:
            raise RuntimeError(f"apt-get download {pkg} produced no .deb in {workdir}")
    deb = debs[-1]
    version = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    root = workdir / pkg
    marker = root / ".extracted"
    if not marker.exists():
        if root.exists():
            shutil.rmtree(root)
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
        marker.write_text(deb.name + "\n")
    return root, version


def skimage_data_dir() -> tuple[Path, str]:
    import skimage

    return Path(skimage.__file__).resolve().parent / "data", skimage.__version__


def _changelog_version(root: Path, pkg: str) -> str:
    """Version of an unpacked .deb, from the first line of its Debian changelog."""
    import gzip

    cl = root / "usr" / "share" / "doc" / pkg / "changelog.Debian.gz"
    try:
        first = gzip.open(cl, "rt").readline()  # "opencv (4.6.0+dfsg-12) unstable; ..."
        return first.split("(", 1)[1].split(")", 1)[0]
    except (OSError, IndexError):
        return "unknown"


class Sources:
    """Resolves (package, path) pairs to local files, fetching packages lazily."""

    def __init__(self, workdir: Path, opencv_root: Path | None = None):
        self.workdir = Path(workdir)
        self._opencv = (Path(opencv_root), _changelog_version(Path(opencv_root), OPENCV_PKG)) if opencv_root else None

    def opencv(self) -> tuple[Path, str]:
        if self._opencv is None:
            root, ver = deb_fetch_extract(OPENCV_PKG, self.workdir)
            self._opencv = (root, ver)
        return self._opencv

    def resolve(self, pkg: str, rel: str) -> tuple[Path, str]:
        """Return (local file, provenance string)."""
        if pkg == OPENCV_PKG:
            root, ver = self.opencv()
            full = f"{OPENCV_EXAMPLES}/{rel}"
            return root / full, f"{OPENCV_PKG} {ver} (Debian): /{full}"
        if pkg == "scikit-image":
            d, ver = skimage_data_dir()
            return d / rel, f"scikit-image {ver} (PyPI wheel): skimage/data/{rel}"
        raise ValueError(pkg)


def license_for(pkg: str, rel: str) -> str:
    if pkg == "scikit-image":
        return LIC_SKIMAGE[Path(rel).stem]
    return LIC_OPENCV if rel.startswith("data/") else LIC_OPENCV_CONTRIB


# --------------------------------------------------------------------------
def build(out_dir: Path, sources: Sources) -> list[dict]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.jpg"):
        old.unlink()
    items = []
    for item_id, pkg, rel, label, name in SELECTION:
        src, provenance = sources.resolve(pkg, rel)
        im = resize_max_side(load_rgb(src), MAX_SIDE)
        data = encode_jpeg(im)
        fname = f"{item_id}.jpg"
        (out_dir / fname).write_bytes(data)
        items.append(
            {
                "id": item_id,
                "file": fname,
                "source": provenance,
                "license": license_for(pkg, rel),
                "width": im.width,
                "height": im.height,
                "sha256": sha256_bytes(data),
                "imagenet_label": label,
                "imagenet_name": name,
            }
        )
        print(f"{item_id:28s} {im.width}x{im.height} chroma={rgb_chroma(im):5.1f}  <- {provenance}")
    (out_dir / "items.json").write_text(json.dumps(items, indent=2) + "\n")
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "colorbench_debs")
    ap.add_argument("--opencv-root", type=Path, default=None,
                    help="an already unpacked opencv-doc (the dir that contains usr/)")
    ap.add_argument("--check", action="store_true",
                    help="build into a temporary dir and compare with --out (exit 1 on difference)")
    args = ap.parse_args(argv)
    sources = Sources(args.workdir, args.opencv_root)
    if not args.check:
        build(args.out, sources)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        new = build(Path(tmp), sources)
        old = json.loads((args.out / "items.json").read_text())
        strip = lambda items: [{k: v for k, v in it.items() if k != "source"} for it in items]  # noqa: E731
        same = strip(new) == strip(old)
        print("identical" if same else "DIFFERENT (package or Pillow version changed?)")
        return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
