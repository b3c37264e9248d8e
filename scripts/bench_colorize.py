"""Benchmark: colorbench.colorize end to end vs the official demo's pipeline.

The reference is the straightforward pipeline of the official demo
(richzhang/colorization `util.py`): PIL bicubic resize of the RGB image to 256x256,
scikit-image rgb2lab at both sizes, the model, bilinear upsampling of ab, and
scikit-image lab2rgb at full size. Same model, same weights, same inputs, one run.

    python scripts/bench_colorize.py [--model eccv16] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import color as skc

from colorbench.models import create_model
from colorbench.pipeline import colorize


def reference_colorize(rgb: np.ndarray, model, size: int = 256) -> np.ndarray:
    rs = np.asarray(Image.fromarray(rgb).resize((size, size), resample=Image.BICUBIC))
    L_orig = torch.from_numpy(skc.rgb2lab(rgb)[:, :, 0]).float()[None, None]
    L_rs = torch.from_numpy(skc.rgb2lab(rs)[:, :, 0]).float()[None, None]
    with torch.inference_mode():
        ab = model(L_rs)
    ab = F.interpolate(ab, size=rgb.shape[:2], mode="bilinear")
    lab = torch.cat((L_orig, ab), dim=1)[0].numpy().transpose(1, 2, 0)
    return (skc.lab2rgb(lab) * 255).round().astype(np.uint8)


def photo(mp: float, seed: int = 0) -> np.ndarray:
    """A smooth, colourful synthetic photo of ``mp`` megapixels (4:3)."""
    h = int(round((mp * 1e6 * 3 / 4) ** 0.5))
    w = int(round(h * 4 / 3))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    img = np.stack([127 + 100 * np.sin(xx / 97), 127 + 100 * np.cos(yy / 131), 127 + 90 * np.sin((xx + yy) / 173)], -1)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return img.clip(0, 255).astype(np.uint8)


def timeit(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="eccv16")
    ap.add_argument("--weights", default=None, help="weights file; default: pretrained if available, else seeded random init")
    ap.add_argument("--sizes", default="0.25,3,12", help="megapixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        model = create_model(args.model, pretrained=args.weights or True)
        wdesc = "published/shipped weights"
    except Exception as e:  # offline: same architecture, seeded random weights, identical in both pipelines
        model = create_model(args.model, pretrained=False)
        wdesc = f"seeded random init ({type(e).__name__})"
    print(f"model {args.model} ({wdesc}), {args.threads} threads, median of {args.repeats}")
    print(f"{'MP':>6} {'size':>11} {'reference s':>12} {'colorbench s':>13} {'speedup':>8} {'max diff':>9} {'mean diff':>10}"
          f" {'mean diff (clip)':>17}")
    for mp in (float(s) for s in args.sizes.split(",")):
        rgb = photo(mp)
        ref = reference_colorize(rgb, model)
        ours = colorize(rgb, model)
        ours_clip = colorize(rgb, model, keep_lightness=False)
        t_ref = timeit(lambda: reference_colorize(rgb, model), args.repeats)
        t_ours = timeit(lambda: colorize(rgb, model), args.repeats)
        d = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
        dc = np.abs(ours_clip.astype(np.int16) - ref.astype(np.int16))
        print(f"{rgb.shape[0] * rgb.shape[1] / 1e6:6.2f} {rgb.shape[1]:>5}x{rgb.shape[0]:<5} {t_ref:12.3f} {t_ours:13.3f}"
              f" {t_ref / t_ours:7.2f}x {d.max():9d} {d.mean() / 255:10.5f} {dc.mean() / 255:17.5f}")
    print("diffs: uint8 levels (max) and fraction of 255 (mean); 'clip' = colorbench with keep_lightness=False, "
          "the reference's gamut handling")


if __name__ == "__main__":
    main()
