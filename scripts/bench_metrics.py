"""Throughput of the whole metric suite: batched accumulators vs a per-image loop over scikit-image/numpy.

Both sides compute the same metrics on the same image pairs in one run:

* **batched**: every registered accumulator (``colorbench.metrics``) updated on
  ``EvalBatch`` es of ``--batch`` images; Lab/LUV conversions and classifier
  passes are shared between metrics through the batch cache.
* **per-image**: a straightforward loop, one image pair at a time, calling
  scikit-image (``rgb2lab``, ``rgb2luv``, ``rgb2hsv``, ``structural_similarity``,
  ``peak_signal_noise_ratio``, ``mean_squared_error``), numpy/scipy (AuC curves,
  nearest ab bin by ``cdist``, colorfulness), the classifier on one image per call
  and ``lpips`` on one pair per call. Each quantity is computed once per image
  even where two metrics use it (not a strawman).

Timed: the per-image statistics and the dataset values; not the bootstrap
intervals (the loop has none) nor the one-off loading of networks (warmed up first).
LPIPS is included on both sides when its AlexNet weights are available, otherwise
it is skipped on both and the script says so. The values of the two sides are
compared, so the speed-up is for the same numbers.

    python scripts/bench_metrics.py                 # 32 builtin photos at 256x256
    python scripts/bench_metrics.py --n 64 --batch 32 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from colorbench.metrics import EvalBatch, MetricUnavailable, create_metric, list_metrics  # noqa: E402

BUILTIN = REPO / "colorbench" / "data" / "builtin"


# -- inputs --------------------------------------------------------------------------------------
def load_pairs(n: int, size: int) -> Tuple[np.ndarray, np.ndarray, List[Optional[int]]]:
    """``n`` ground-truth photos at ``size`` x ``size`` (builtin set, else scikit-image's) and plausible
    "colorizations" of them (ab scaled and rotated per image, the kind of error models make)."""
    from PIL import Image
    from skimage import color as skcolor

    imgs: List[np.ndarray] = []
    labels: List[Optional[int]] = []
    if (BUILTIN / "items.json").is_file():
        for it in json.loads((BUILTIN / "items.json").read_text()):
            with Image.open(BUILTIN / it["file"]) as im:
                imgs.append(np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC)))
            labels.append(it.get("imagenet_label"))
    else:
        from skimage import data

        for name in ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left"):
            im = Image.fromarray(getattr(data, name)())
            imgs.append(np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC)))
            labels.append(None)
    reps = -(-n // len(imgs))
    gt = np.stack((imgs * reps)[:n])
    labels = (labels * reps)[:n]
    rng = np.random.default_rng(0)
    pred = []
    for g in gt:
        lab = skcolor.rgb2lab(g)
        ang = rng.uniform(-0.6, 0.6)
        a, b = lab[..., 1].copy(), lab[..., 2].copy()
        s = rng.uniform(0.4, 1.1)
        lab[..., 1] = s * (np.cos(ang) * a - np.sin(ang) * b)
        lab[..., 2] = s * (np.sin(ang) * a + np.cos(ang) * b)
        pred.append(np.clip(skcolor.lab2rgb(lab) * 255 + 0.5, 0, 255).astype(np.uint8))
    return np.stack(pred), gt, labels


# -- the per-image reference loop ----------------------------------------------------------------
class Reference:
    """The same metrics, one image pair at a time, with scikit-image / numpy / scipy."""

    def __init__(self, classifier, lpips_model) -> None:
        from colorbench.color import ab_centers
        from colorbench.metrics.ab_auc import class_weights

        self.clf = classifier
        self.lpips = lpips_model
        self.centers = ab_centers()
        self.weights = class_weights()

    def run(self, pred: np.ndarray, gt: np.ndarray, labels: List[Optional[int]],
            times: Dict[str, float]) -> Dict[str, float]:
        from scipy.spatial.distance import cdist
        from skimage.color import rgb2hsv, rgb2lab, rgb2luv
        from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

        def tick(key: str, t0: float) -> float:
            t1 = time.perf_counter()
            times[key] += t1 - t0
            return t1

        ts = np.arange(151)
        acc: Dict[str, list] = defaultdict(list)
        num, den, num_w, den_w = np.zeros(151), 0.0, np.zeros(151), 0.0
        for p, g, lab in zip(pred, gt, labels):
            t = time.perf_counter()
            ab_p, ab_g = rgb2lab(p)[..., 1:], rgb2lab(g)[..., 1:]
            d = np.sqrt(((ab_p - ab_g) ** 2).sum(-1)).ravel()
            num += np.array([(d <= th).sum() for th in ts])
            den += d.size
            t = tick("auc", t)
            w = self.weights[cdist(ab_g.reshape(-1, 2), self.centers).argmin(1)]
            num_w += np.array([w[d <= th].sum() for th in ts])
            den_w += w.sum()
            t = tick("auc_rebal", t)
            acc["psnr"].append(min(peak_signal_noise_ratio(g, p, data_range=255), 100.0))
            t = tick("psnr", t)
            acc["mse"].append(mean_squared_error(g, p))
            t = tick("mse", t)
            acc["ssim"].append(structural_similarity(g, p, channel_axis=-1, data_range=255))
            t = tick("ssim", t)
            if self.lpips is not None:
                import lpips

                with torch.no_grad():
                    acc["lpips"].append(self.lpips(lpips.im2tensor(p), lpips.im2tensor(g)).item())
                t = tick("lpips", t)
            with torch.no_grad():
                cp = int(self.clf.logits(torch.from_numpy(p.copy()).permute(2, 0, 1)[None]).argmax())
                cg = int(self.clf.logits(torch.from_numpy(g.copy()).permute(2, 0, 1)[None]).argmax())
            if lab is not None:
                acc["top1"].append(float(cp == lab))
            acc["top1_agree"].append(float(cp == cg))
            t = tick("top1 + top1_agree", t)
            acc["colorfulness"].append(_colorfulness(p))
            t = tick("colorfulness", t)
            acc["sat_diff"].append(np.abs(rgb2hsv(p)[..., 1] - rgb2hsv(g)[..., 1]).mean())
            t = tick("sat_diff", t)
            luv_p, luv_g = rgb2luv(p), rgb2luv(g)
            for ch, name, (lo, hi) in ((1, "acc_u", (-83.08, 175.02)), (2, "acc_v", (-134.10, 107.40))):
                bp = np.clip(np.floor((luv_p[..., ch] - lo) / (hi - lo) * 50), 0, 49)
                bg = np.clip(np.floor((luv_g[..., ch] - lo) / (hi - lo) * 50), 0, 49)
                acc[name].append(np.mean(bp == bg))
            tick("acc_u + acc_v", t)
        out = {k: float(np.mean(v)) for k, v in acc.items() if v}
        out["auc"] = float(np.mean(num / den))
        out["auc_rebal"] = float(np.mean(num_w / den_w))
        return out


def _colorfulness(img: np.ndarray) -> float:
    r, g, b = (img[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


# -- the batched suite ---------------------------------------------------------------------------
def run_batched(metrics: Dict[str, object], pred: np.ndarray, gt: np.ndarray, labels: List[Optional[int]],
                bs: int, times: Dict[str, float]) -> Dict[str, float]:
    for m in metrics.values():
        m.reset()
    for s in range(0, len(pred), bs):
        batch = EvalBatch([str(i) for i in range(s, min(s + bs, len(pred)))], pred[s : s + bs], gt[s : s + bs],
                          labels[s : s + bs])
        for name, m in metrics.items():
            t = time.perf_counter()
            m.update(batch)
            times[name] += time.perf_counter() - t
    out = {}
    for name, m in metrics.items():
        t = time.perf_counter()
        out[name] = float(m.aggregate(m.stats()))
        times[name] += time.perf_counter() - t
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32, help="image pairs")
    ap.add_argument("--size", type=int, default=256, help="side of the (square) evaluation images")
    ap.add_argument("--batch", type=int, default=16, help="images per EvalBatch")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per side (alternating); the best counts")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)

    pred, gt, labels = load_pairs(args.n, args.size)
    skipped: Dict[str, str] = {}

    def fresh_metrics() -> Dict[str, object]:
        """New accumulators (networks stay loaded): no state, e.g. cached top-1 of originals, carries over."""
        out = {}
        for name in list_metrics():
            if name in skipped:
                continue
            try:
                out[name] = create_metric(name)
            except MetricUnavailable as e:
                skipped[name] = str(e)
        return out

    metrics = fresh_metrics()
    lpips_model = metrics["lpips"].model if "lpips" in metrics else None
    clf = metrics["top1"].classifier
    ref = Reference(clf, lpips_model)

    # warm-up (allocators, lazy imports), not timed
    run_batched(metrics, pred[:2], gt[:2], labels[:2], 2, defaultdict(float))
    ref.run(pred[:1], gt[:1], labels[:1], defaultdict(float))

    best_b, best_r = None, None
    for _ in range(max(1, args.repeat)):
        tb: Dict[str, float] = defaultdict(float)
        metrics = fresh_metrics()
        t0 = time.perf_counter()
        vb = run_batched(metrics, pred, gt, labels, args.batch, tb)
        tb_total = time.perf_counter() - t0
        tr: Dict[str, float] = defaultdict(float)
        t0 = time.perf_counter()
        vr = ref.run(pred, gt, labels, tr)
        tr_total = time.perf_counter() - t0
        if best_b is None or tb_total < best_b[0]:
            best_b = (tb_total, tb, vb)
        if best_r is None or tr_total < best_r[0]:
            best_r = (tr_total, tr, vr)
    tb_total, tb, vb = best_b
    tr_total, tr, vr = best_r

    print(f"{args.n} image pairs at {args.size}x{args.size}, batch {args.batch}, torch threads "
          f"{torch.get_num_threads()}, classifier {clf.name}, best of {args.repeat}")
    for name, why in skipped.items():
        print(f"skipped on both sides: {name} ({why[:160]}{'...' if len(why) > 160 else ''})")
    print("\nvalues (batched vs per-image loop):")
    for name in sorted(vb):
        r = vr.get(name)
        diff = "" if r is None else f"  |diff| {abs(vb[name] - r):.2e}"
        print(f"  {name:14s} {vb[name]:12.6f}  {'' if r is None else f'{r:12.6f}'}{diff}")
    print("\nseconds per metric (batched: shared Lab/LUV/classifier work is charged to the first metric using it):")
    groups = {"top1 + top1_agree": ("top1", "top1_agree"), "acc_u + acc_v": ("acc_u", "acc_v")}
    for key in sorted(set(tr) | {"auc", "auc_rebal", "psnr", "mse", "ssim", "colorfulness", "sat_diff"}):
        b = sum(tb.get(k, 0.0) for k in groups.get(key, (key,)))
        print(f"  {key:18s} batched {b:7.3f}   per-image {tr.get(key, 0.0):7.3f}")
    rb, rr = args.n / tb_total, args.n / tr_total
    print(f"\nbatched suite:   {tb_total:7.2f} s  {rb:8.2f} images/s")
    print(f"per-image loop:  {tr_total:7.2f} s  {rr:8.2f} images/s")
    print(f"speed-up: {rb / rr:.2f}x")
    excl_b = tb_total - tb.get("top1", 0) - tb.get("top1_agree", 0)
    excl_r = tr_total - tr.get("top1 + top1_agree", 0)
    print(f"speed-up without the classifier forward passes: {excl_r / excl_b:.2f}x "
          f"({args.n / excl_b:.1f} vs {args.n / excl_r:.1f} images/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
