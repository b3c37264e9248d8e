#!/usr/bin/env python
"""Build the offline training corpus from colour photographs shipped in packages.

Nothing is downloaded but packages from the Debian archive (``apt-get download``,
then ``dpkg -x`` into a work directory -- nothing is installed) and the
scikit-image wheel that is already installed. Sources:

====================================  ==========  ==========================================
package                               category    what is taken
====================================  ==========  ==========================================
plasma-workspace-wallpapers (Debian)  scene       the photographic wallpapers (fixed list;
                                                  the illustrations are skipped), largest size
opencv-doc (Debian)                   scene       sample photographs NOT in ``builtin`` and
                                                  not a twin of one (fixed list)
tuxpaint-stamps-default (Debian)      object      PNG stamps that pass a photo test (below);
                                                  SVGs, symbols/flags/road signs/letters,
                                                  ``cartoon`` folders and mirrored copies skipped
stellarium-data (Debian)              landscape   panorama textures of photographed
                                                  landscapes (``landscape.ini``; rendered ones
                                                  skipped), cropped to
                                                  their opaque band and cut into tiles
scikit-image (PyPI wheel)             scene       bundled colour photos not used in ``builtin``
====================================  ==========  ==========================================

Every candidate then goes through the same filters, in order:

1. **builtin exclusion**: the exact source files of ``colorbench/data/builtin``
   (and their held-out stereo/edited twins) are skipped by path; any image whose
   source bytes or decoded pixels hash to a builtin sha256 is dropped; any image
   that is a perceptual near-duplicate of a builtin image is dropped;
2. **size**: shorter side below ``--min-side`` (default 96) -> dropped;
3. resized so that the shorter side is at most ``--short-side`` (default 384);
4. **colour**: mean chroma (max(R,G,B) - min(R,G,B), over the object's own
   pixels for tuxpaint cut-outs) below ``--min-chroma`` (default 4; grayscale
   files score 0) -> dropped;
5. **deduplication**: exact (sha256 of the source bytes and of the decoded
   pixels) and perceptual near-duplicates of an image already kept -> dropped;
6. written as ``<out>/images/<source>__<name>.png``.

Near-duplicate = 256-bit average hash within 26 bits AND 256-bit difference
hash within 45 bits AND 8x8 colour thumbnails within 12 levels (mean absolute
difference); see ``build_builtin.is_near_duplicate``. Resized and re-encoded
copies of the builtin photos score at most 8 / 24 / 1.

Photo test for tuxpaint stamps (drawings there are anti-aliased, so "number of
colours" alone does not separate them): on the opaque interior, the fraction of
pixels whose largest per-channel 4-neighbour Laplacian is <= 3 ("smooth"
fraction) must be <= 0.25 (photographs have texture and sensor/JPEG noise;
flat fills and smooth vector gradients do not), and the colour entropy over a
15-bit RGB histogram must be >= 5 bits. A short deny list removes the few
drawings/renders that still pass (checked by eye on contact sheets). The test
is deliberately strict: it also rejects some heavily smoothed photos.

Outputs ``<out>/manifest.csv`` (file, source_package, original_path, width,
height, sha256, category, license), ``<out>/dropped.csv`` (every candidate
left out and why) and ``<out>/build_info.json`` (package versions, settings,
counts, drops by reason, timing).

Usage::

    python scripts/build_corpus.py                       # -> data/corpus
    python scripts/build_corpus.py --out /tmp/corpus --short-side 256
    python scripts/build_corpus.py --sources tuxpaint,plasma --sheet /tmp/sheet.png
"""
from __future__ import annotations

import argparse
import configparser
import csv
import hashlib
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_builtin as bb  # noqa: E402  (shared helpers + the builtin selection)

REPO = Path(__file__).resolve().parents[1]
Image.MAX_IMAGE_PIXELS = 60_000_000  # wallpapers are up to 5120x2880

# ---------------------------------------------------------------------------
# Source-specific selections (fixed lists are for things no pixel rule decides
# reliably: photographic wallpapers vs. digital illustrations, and the few
# opencv photos that are not already in builtin).
# ---------------------------------------------------------------------------
PLASMA_PHOTOS = [
    "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
    "Grey", "Kite", "OneStandsOut", "Path", "summer_1am",
]  # the other 22 wallpapers (Altai, Autumn, Canopee, ..., Volna) are illustrations

OPENCV_EXTRA_PHOTOS = [
    "data/smarties.png", "data/stuff.jpg",
    "text/scenetext02.jpg", "text/scenetext05.jpg",
]  # everything else photographic in examples/ is in builtin or is a held-out twin

SKIMAGE_EXTRA_PHOTOS = ["hubble_deep_field.jpg"]  # other colour files are synthetic/medical

TUX_SKIP_DIRS = {"symbols", "flags", "roadsigns", "cartoon", "alphabets"}
TUX_DENY = {  # drawings / 3-D renders that pass the pixel test (seen on contact sheets)
    "clothes/button.png",
    "seasonal/easter/butterfly.png",
    "seasonal/easter/bunny.png",
    "seasonal/easter/daffodil.png",
    "seasonal/easter/wrapped_chocolate_easter_egg.png",
    "seasonal/easter/wrapped_chocolate_easter_egg_2.png",
    "seasonal/christmas/stocking.png",
    "vehicles/masstransit/green_korean_bus.png",
    "space/planets/6_saturn.png",
    "household/Lightbulb.png",
}
TUX_MAX_SMOOTH = 0.25
TUX_MIN_ENTROPY = 5.0

STELLARIUM_SKIP_PLANETS = {"Jupiter", "Saturn", "Uranus", "Neptune", "Sun"}  # rendered, no surface photo
STELLARIUM_RENDERED = re.compile(r"terragen|render|gas surface|photosphere", re.I)  # in description.en.utf8

PKG_PLASMA = "plasma-workspace-wallpapers"
PKG_TUX = "tuxpaint-stamps-default"
PKG_STEL = "stellarium-data"
PKG_OPENCV = bb.OPENCV_PKG
PKG_SKIMAGE = "scikit-image"

LICENSES = {  # as stated by each package (Debian copyright file / metadata)
    PKG_OPENCV: "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)",
    PKG_TUX: "GPL-2 (Debian copyright, Files: *)",
    PKG_STEL: "GPL-2+ (Debian copyright, Files: *)",
}


@dataclass
class Candidate:
    package: str
    path: str  # path inside the package (as shipped), plus '#tileN' for tiles
    category: str
    load: Callable[[], Image.Image]  # -> RGB image, already cropped/composited
    raw_sha: str  # sha256 of the source file bytes ('' for tiles sharing a source)
    license: str = ""
    name: str = ""  # output file stem
    chroma: float | None = None  # precomputed (e.g. over opaque pixels only); else measured on the image


@dataclass
class Stats:
    seen: dict = field(default_factory=dict)
    kept: dict = field(default_factory=dict)
    dropped: dict = field(default_factory=dict)
    log: list = field(default_factory=list)  # (package, original path, reason) for every drop

    def drop(self, pkg: str, reason: str, path: str = ""):
        self.dropped.setdefault(pkg, {}).setdefault(reason, 0)
        self.dropped[pkg][reason] += 1
        self.log.append((pkg, path, reason))


# ---------------------------------------------------------------------------
# Pixel measures
# ---------------------------------------------------------------------------
def photo_measures(rgba: np.ndarray) -> tuple[float, float, int]:
    """(smooth fraction, colour entropy in bits, #interior pixels) on the opaque interior."""
    a = rgba.astype(np.int32)
    rgb, opaque = a[..., :3], a[..., 3] >= 250
    inner = erode(opaque, 2)[1:-1, 1:-1]
    n = int(inner.sum())
    if n < 400:
        return 1.0, 0.0, n
    lap = np.zeros(inner.shape, np.int32)
    for c in range(3):
        x = rgb[..., c]
        lap = np.maximum(lap, np.abs(4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]))
    smooth = float((lap[inner] <= 3).mean())
    q = rgb[opaque] >> 3
    codes = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
    counts = np.bincount(codes, minlength=1 << 15)
    p = counts[counts > 0] / counts.sum()
    entropy = float(-(p * np.log2(p)).sum())
    return smooth, entropy, n


def erode(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Binary erosion with a 3x3 cross; pixels outside the image count as background."""
    m = mask.copy()
    for _ in range(iterations):
        p = np.pad(m, 1, constant_values=False)
        m = p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return m


def composite_white(im: Image.Image) -> Image.Image:
    im = im.convert("RGBA")
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, im).convert("RGB")


def opaque_band(rgba: np.ndarray, min_frac: float = 0.995) -> tuple[int, int] | None:
    """Longest run of rows that are (almost) fully opaque: (top, bottom) or None."""
    ok = (rgba[..., 3] >= 250).mean(axis=1) >= min_frac
    best, start = None, None
    for i, v in enumerate(list(ok) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if best is None or i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def tiles(width: int, height: int, max_aspect: float = 2.0) -> list[tuple[int, int]]:
    """Split a wide strip into equal tiles no wider than max_aspect * height: [(x0, x1), ...]."""
    n = max(1, int(np.ceil(width / (max_aspect * height))))
    edges = np.linspace(0, width, n + 1).round().astype(int)
    return list(zip(edges[:-1], edges[1:]))


def pixel_sha(im: Image.Image) -> str:
    h = hashlib.sha256(f"{im.width}x{im.height}".encode())
    h.update(np.asarray(im.convert("RGB")).tobytes())
    return h.hexdigest()


def slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()


# ---------------------------------------------------------------------------
# Sources -> candidates
# ---------------------------------------------------------------------------
def _rgb_loader(path: Path) -> Callable[[], Image.Image]:
    return lambda: bb.load_rgb(path)


def iter_plasma(root: Path, stats: Stats) -> Iterator[Candidate]:
    base = root / "usr/share/wallpapers"
    for wp in sorted(p.name for p in base.iterdir() if p.is_dir()):
        stats.seen[PKG_PLASMA] = stats.seen.get(PKG_PLASMA, 0) + 1
        if wp not in PLASMA_PHOTOS:
            stats.drop(PKG_PLASMA, "illustration (not in photo list)", f"/usr/share/wallpapers/{wp}")
            continue
        files = [f for f in sorted((base / wp / "contents").glob("images/*")) if f.suffix.lower() in {".jpg", ".png"}]
        files = [f for f in files if not f.is_symlink()] or files  # sizes are often symlinks to one file
        if not files:
            stats.drop(PKG_PLASMA, "no image", f"/usr/share/wallpapers/{wp}")
            continue

        def area(f):
            with Image.open(f) as im:
                return im.width * im.height

        f = max(files, key=area)
        lic = ""
        meta = base / wp / "metadata.json"
        if meta.exists():
            kp = json.loads(meta.read_text()).get("KPlugin", {})
            authors = ", ".join(a.get("Name", "") for a in kp.get("Authors", []))
            lic = f"{kp.get('License', '?')} (metadata.json, author {authors}); Debian copyright: GPL-2+"
        yield Candidate(PKG_PLASMA, "/" + str(f.relative_to(root)), "scene", _rgb_loader(f),
                        bb.sha256_file(f), lic, f"plasma__{slug(wp)}")


def iter_opencv(root: Path, stats: Stats) -> Iterator[Candidate]:
    for rel in OPENCV_EXTRA_PHOTOS:
        stats.seen[PKG_OPENCV] = stats.seen.get(PKG_OPENCV, 0) + 1
        f = root / bb.OPENCV_EXAMPLES / rel
        if not f.exists():
            stats.drop(PKG_OPENCV, "missing in this version", f"/{bb.OPENCV_EXAMPLES}/{rel}")
            continue
        yield Candidate(PKG_OPENCV, f"/{bb.OPENCV_EXAMPLES}/{rel}", "scene", _rgb_loader(f), bb.sha256_file(f),
                        LICENSES[PKG_OPENCV], f"opencv__{slug(Path(rel).with_suffix('').as_posix())}")


def iter_skimage(stats: Stats) -> Iterator[Candidate]:
    d, _ = bb.skimage_data_dir()
    for rel in SKIMAGE_EXTRA_PHOTOS:
        stats.seen[PKG_SKIMAGE] = stats.seen.get(PKG_SKIMAGE, 0) + 1
        f = d / rel
        if not f.exists():
            stats.drop(PKG_SKIMAGE, "missing in this version", f"skimage/data/{rel}")
            continue
        stem = Path(rel).stem
        yield Candidate(PKG_SKIMAGE, f"skimage/data/{rel}", "scene", _rgb_loader(f), bb.sha256_file(f),
                        bb.LIC_SKIMAGE.get(stem, "see skimage.data docstring"), f"skimage__{slug(stem)}")


def iter_tuxpaint(root: Path, stats: Stats) -> Iterator[Candidate]:
    base = root / "usr/share/tuxpaint/stamps"
    for f in sorted(base.rglob("*")):
        if f.suffix.lower() not in {".png", ".svg"}:
            continue
        rel = f.relative_to(base).as_posix()
        orig = "/" + f.relative_to(root).as_posix()
        stats.seen[PKG_TUX] = stats.seen.get(PKG_TUX, 0) + 1
        if f.suffix.lower() == ".svg":
            stats.drop(PKG_TUX, "svg (drawing)", orig)
            continue
        if TUX_SKIP_DIRS & set(rel.split("/")[:-1]):
            stats.drop(PKG_TUX, "symbol/flag/sign/letter/cartoon folder", orig)
            continue
        if f.stem.endswith("_mirror"):
            stats.drop(PKG_TUX, "mirrored copy", orig)
            continue
        if rel in TUX_DENY:
            stats.drop(PKG_TUX, "deny list (drawing/render)", orig)
            continue
        with Image.open(f) as im:
            im.load()
            rgba = im.convert("RGBA")
        arr = np.asarray(rgba)
        smooth, entropy, n = photo_measures(arr)
        if n < 400 or smooth > TUX_MAX_SMOOTH or entropy < TUX_MIN_ENTROPY:
            stats.drop(PKG_TUX, "not photographic (smooth/entropy test)", orig)
            continue
        bbox = rgba.getchannel("A").point(lambda v: 255 if v >= 16 else 0).getbbox()
        px = arr[arr[..., 3] >= 128][:, :3].astype(np.int16)
        chroma = float((px.max(axis=1) - px.min(axis=1)).mean()) if len(px) else 0.0

        def load(rgba=rgba, bbox=bbox):
            return composite_white(rgba.crop(bbox) if bbox else rgba)

        yield Candidate(PKG_TUX, orig, "object", load, bb.sha256_file(f),
                        LICENSES[PKG_TUX], f"tuxpaint__{slug(rel[:-4])}", chroma)


def iter_stellarium(root: Path, stats: Stats) -> Iterator[Candidate]:
    base = root / "usr/share/stellarium/landscapes"
    for d in sorted(p for p in base.iterdir() if (p / "landscape.ini").exists()):
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        cp.read(d / "landscape.ini", encoding="utf-8")
        ls = cp["landscape"] if cp.has_section("landscape") else {}
        planet = cp.get("location", "planet", fallback="Earth")
        kind = ls.get("type", "")
        if kind == "old_style":
            texs = [ls[k] for k in sorted((k for k in ls if re.fullmatch(r"tex\d+", k)), key=lambda k: int(k[3:]))]
        elif kind == "spherical":
            texs = [ls["maptex"]] if "maptex" in ls else []
        else:  # polygonal (no image), fisheye (sky cut out of the middle), ...
            texs = []
        stats.seen[PKG_STEL] = stats.seen.get(PKG_STEL, 0) + 1
        if not texs:
            stats.drop(PKG_STEL, f"landscape type {kind or '?'} without side textures", "/" + d.relative_to(root).as_posix())
            continue
        desc_file = d / "description.en.utf8"
        desc = desc_file.read_text(encoding="utf-8", errors="replace") if desc_file.exists() else ""
        if planet in STELLARIUM_SKIP_PLANETS or STELLARIUM_RENDERED.search(desc):
            stats.drop(PKG_STEL, "rendered (planet/sun, or per its description)", "/" + d.relative_to(root).as_posix())
            continue
        for tex in texs:
            f = d / tex
            if not f.exists():
                continue
            with Image.open(f) as im:
                im.load()
                rgba = np.asarray(im.convert("RGBA"))
            band = opaque_band(rgba)
            if band is None or band[1] - band[0] < 64:
                stats.drop(PKG_STEL, "no opaque band >= 64 rows", "/" + f.relative_to(root).as_posix())
                continue
            strip = rgba[band[0]:band[1]]
            raw = bb.sha256_file(f)
            for i, (x0, x1) in enumerate(tiles(strip.shape[1], strip.shape[0])):
                tile = strip[:, x0:x1]

                def load(tile=tile):
                    return Image.fromarray(np.ascontiguousarray(tile[..., :3]), "RGB")

                suffix = f"#tile{i}" if i or x1 < strip.shape[1] else ""
                yield Candidate(PKG_STEL, "/" + str(f.relative_to(root)) + suffix, "landscape", load,
                                raw if not suffix else "", LICENSES[PKG_STEL],
                                f"stellarium__{slug(d.name)}_{slug(Path(tex).stem)}" + (f"_t{i}" if suffix else ""))


# ---------------------------------------------------------------------------
def builtin_reference(sources: bb.Sources) -> tuple[set, set, list, set]:
    """(excluded (pkg, path) pairs, excluded sha256s, builtin hashes, builtin ids) from the repo's builtin set."""
    items = json.loads((bb.OUT_DIR / "items.json").read_text())
    shas, hashes = set(), []
    for it in items:
        shas.add(it["sha256"])
        im = bb.load_rgb(bb.OUT_DIR / it["file"])
        shas.add(pixel_sha(im))
        hashes.append((it["id"], bb.image_hashes(im)))
    paths = set()
    for _, pkg, rel, _, _ in bb.SELECTION:
        paths.add((pkg, rel))
        try:
            src, _ = sources.resolve(pkg, rel)
            if src.exists():
                shas.add(bb.sha256_file(src))
        except Exception:  # package not fetched: the hash checks still apply
            pass
    paths |= set(bb.HELD_OUT_TWINS)
    excluded_paths = set()
    for pkg, rel in paths:  # normalise to the manifest's path form
        excluded_paths.add(f"/{bb.OPENCV_EXAMPLES}/{rel}" if pkg == PKG_OPENCV else f"skimage/data/{rel}")
    return excluded_paths, shas, hashes, {it["id"] for it in items}


def save_sheet(paths: list[Path], out: Path, n: int = 48, seed: int = 0, cell: int = 160, cols: int = 8):
    from PIL import ImageDraw

    rng = random.Random(seed)
    sample = rng.sample(paths, min(n, len(paths)))
    rows = (len(sample) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * cell, rows * (cell + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, p in enumerate(sample):
        im = Image.open(p).convert("RGB")
        im.thumbnail((cell, cell))
        x, y = (i % cols) * cell, (i // cols) * (cell + 12)
        sheet.paste(im, (x, y))
        draw.text((x + 2, y + cell), p.stem[:26], fill="black")
    sheet.save(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "data" / "corpus")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/colorbench_debs"),
                    help="where .deb files are downloaded and unpacked (re-used across runs)")
    ap.add_argument("--short-side", type=int, default=384, help="resize so the shorter side is at most this")
    ap.add_argument("--min-side", type=int, default=96, help="drop images whose shorter side is smaller")
    ap.add_argument("--min-chroma", type=float, default=4.0, help="drop images with lower mean chroma (0..255)")
    ap.add_argument("--sources", default="plasma,opencv,tuxpaint,stellarium,skimage")
    ap.add_argument("--sheet", type=Path, default=None, help="also save a contact sheet of a random sample here")
    args = ap.parse_args(argv)

    t0 = time.time()
    wanted = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = set(wanted) - {"plasma", "opencv", "tuxpaint", "stellarium", "skimage"}
    if unknown:
        ap.error(f"unknown sources: {sorted(unknown)}")

    versions = {}

    def deb(pkg):
        root, ver = bb.deb_fetch_extract(pkg, args.workdir)
        versions[pkg] = ver
        return root

    sources = bb.Sources(args.workdir)
    stats = Stats()
    timing = {}

    # builtin reference (needs opencv-doc to hash the original builtin source files)
    t = time.time()
    opencv_root, versions[PKG_OPENCV] = sources.opencv()
    timing["fetch_opencv_s"] = round(time.time() - t, 2)
    t = time.time()
    ex_paths, ex_shas, ex_hashes, _ = builtin_reference(sources)
    timing["builtin_reference_s"] = round(time.time() - t, 2)

    gens = []
    for s in wanted:
        t = time.time()
        if s == "plasma":
            gens.append(iter_plasma(deb(PKG_PLASMA), stats))
        elif s == "opencv":
            gens.append(iter_opencv(opencv_root, stats))
            continue  # fetched above
        elif s == "tuxpaint":
            gens.append(iter_tuxpaint(deb(PKG_TUX), stats))
        elif s == "stellarium":
            gens.append(iter_stellarium(deb(PKG_STEL), stats))
        elif s == "skimage":
            _, versions[PKG_SKIMAGE] = bb.skimage_data_dir()
            gens.append(iter_skimage(stats))
        timing[f"fetch_{s}_s"] = round(time.time() - t, 2)

    img_dir = args.out / "images"
    if img_dir.exists():
        shutil.rmtree(img_dir)
    img_dir.mkdir(parents=True)

    kept_shas: set = set()
    kept_hashes: list = []  # (name, hashes)
    rows = []
    near_dup_log = []
    t = time.time()
    for gen in gens:
        for c in gen:
            pkg = c.package
            base_path = c.path.split("#", 1)[0]
            if base_path in ex_paths or (c.raw_sha and c.raw_sha in ex_shas):
                stats.drop(pkg, "builtin (path or sha256)", c.path)
                continue
            im = c.load()
            psha = pixel_sha(im)
            if psha in ex_shas:
                stats.drop(pkg, "builtin (sha256)", c.path)
                continue
            if min(im.size) < args.min_side:
                stats.drop(pkg, f"smaller than {args.min_side} px", c.path)
                continue
            small = bb.resize_short_side(im, args.short_side)
            chroma = c.chroma if c.chroma is not None else bb.rgb_chroma(small)
            if chroma < args.min_chroma:
                stats.drop(pkg, "grayscale / low chroma", c.path)
                continue
            h = bb.image_hashes(small)
            hit = next((bid for bid, bh in ex_hashes if bb.is_near_duplicate(h, bh)), None)
            if hit:
                stats.drop(pkg, "near-duplicate of builtin", c.path)
                near_dup_log.append((c.name, hit))
                continue
            if (c.raw_sha and c.raw_sha in kept_shas) or psha in kept_shas:
                stats.drop(pkg, "exact duplicate", c.path)
                continue
            hit = next((n for n, kh in kept_hashes if bb.is_near_duplicate(h, kh)), None)
            if hit:
                stats.drop(pkg, "near-duplicate", c.path)
                near_dup_log.append((c.name, hit))
                continue
            kept_shas.update({psha} | ({c.raw_sha} if c.raw_sha else set()))
            kept_hashes.append((c.name, h))
            fname = f"{c.name}.png"
            out_path = img_dir / fname
            small.save(out_path, format="PNG")
            rows.append({
                "file": f"images/{fname}", "source_package": pkg, "original_path": c.path,
                "width": small.width, "height": small.height, "sha256": bb.sha256_file(out_path),
                "category": c.category, "license": c.license,
            })
            stats.kept[pkg] = stats.kept.get(pkg, 0) + 1
    timing["process_s"] = round(time.time() - t, 2)

    with open(args.out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "source_package", "original_path", "width", "height",
                                           "sha256", "category", "license"])
        w.writeheader()
        w.writerows(rows)
    timing["total_s"] = round(time.time() - t0, 2)
    per_cat = {}
    for r in rows:
        per_cat[r["category"]] = per_cat.get(r["category"], 0) + 1
    info = {
        "package_versions": versions,
        "settings": {"short_side": args.short_side, "min_side": args.min_side, "min_chroma": args.min_chroma,
                     "sources": wanted, "tux_max_smooth": TUX_MAX_SMOOTH, "tux_min_entropy": TUX_MIN_ENTROPY},
        "total": len(rows), "kept_per_source": stats.kept, "per_category": per_cat,
        "seen_per_source": stats.seen, "dropped": stats.dropped,
        "near_duplicates": near_dup_log, "timing": timing,
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    with open(args.out / "dropped.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source_package", "original_path", "reason"])
        w.writerows(stats.log)

    for pkg in sorted(set(stats.seen) | set(stats.kept)):
        print(f"{pkg:30s} kept {stats.kept.get(pkg, 0):4d}   dropped {json.dumps(stats.dropped.get(pkg, {}))}")
    print(f"total {len(rows)} images ({per_cat}) in {timing['total_s']} s -> {args.out}")
    if args.sheet:
        save_sheet([img_dir / Path(r["file"]).name for r in rows], args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
