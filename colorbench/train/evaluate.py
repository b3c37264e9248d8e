"""A small, self-contained evaluation for model cards and the training CLI.

It runs the one pipeline (:func:`colorbench.pipeline.colorize_batch`) on the
benchmark's evaluation images (shorter side to ``size``, centre crop; the same
:func:`colorbench.bench.runner.eval_image`) and reports

* ``auc`` and ``auc_rebal``: AuC of the ab error over t = 0..150, plain and
  class-rebalanced (ECCV16), from :mod:`colorbench.metrics.ab_auc`;
* ``agreement``: the fraction of images whose top-1 ImageNet class by the offline
  EfficientNet-Lite0 classifier is the same on the colorization as on the original.

The benchmark (``colorbench bench``) is the reference; this exists so a training
run can write its card without the whole benchmark.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch


def eval_images(dataset: str = "builtin", size: int = 256) -> tuple:
    """(ids, uint8 (N, size, size, 3)) of a dataset prepared like the benchmark."""
    from ..bench.runner import eval_image
    from ..data import load_dataset

    ds = load_dataset(dataset)
    return [it.id for it in ds], np.stack([eval_image(it.rgb, size) for it in ds])


def top1(rgb: np.ndarray, classifier: str = "efficientnet_lite0", batch_size: int = 16) -> np.ndarray:
    from ..classifiers import load_classifier

    clf = load_classifier(classifier)
    out = []
    for s in range(0, len(rgb), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(rgb[s : s + batch_size])).permute(0, 3, 1, 2)
        out.append(clf.logits(x).argmax(1).numpy())
    return np.concatenate(out)


def evaluate_predictions(pred: np.ndarray, gt: np.ndarray, gt_top1: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Metrics of uint8 predictions ``(N, H, W, 3)`` against ground truth of the same shape."""
    from ..metrics.ab_auc import ab_error_counts, auc_from_counts, class_weights

    plain = ab_error_counts(pred, gt)
    rebal = ab_error_counts(pred, gt, class_weights())
    gt_top1 = top1(gt) if gt_top1 is None else gt_top1
    return {"auc": auc_from_counts(plain), "auc_rebal": auc_from_counts(rebal),
            "agreement": float(np.mean(top1(pred) == gt_top1)), "n": int(len(gt))}


def evaluate(models: Sequence[Union[str, torch.nn.Module]], dataset: str = "builtin", size: int = 256,
             names: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    """Evaluate several models (names or instances) on a dataset -> ``{name: metrics}``."""
    from ..pipeline import colorize_batch

    torch.set_grad_enabled(False)
    ids, gt = eval_images(dataset, size)
    gt_top1 = top1(gt)
    out: Dict[str, Dict[str, float]] = {}
    for i, m in enumerate(models):
        name = names[i] if names else (m if isinstance(m, str) else getattr(m, "registry_name", type(m).__name__))
        pred = np.stack(colorize_batch(list(gt), m))
        out[name] = evaluate_predictions(pred, gt, gt_top1)
    return out


def contact_sheet(models: Sequence[Union[str, torch.nn.Module]], labels: Sequence[str], path: str,
                  dataset: str = "builtin", size: int = 160, per_row: int = 3, limit: Optional[int] = None) -> str:
    """A PNG grid: for each image, ``original | <model 1> | <model 2> ...`` side by side, captioned."""
    from PIL import Image, ImageDraw

    from ..pipeline import colorize_batch

    ids, gt = eval_images(dataset, size)
    if limit:
        ids, gt = ids[:limit], gt[:limit]
    cols = [gt] + [np.stack(colorize_batch(list(gt), m)) for m in models]
    names = ["original"] + list(labels)
    k = len(cols)
    pad, cap = 4, 14
    cell_w = k * size + (k - 1) * 2
    n = len(ids)
    rows = (n + per_row - 1) // per_row
    W = per_row * cell_w + (per_row + 1) * pad
    H = cap + rows * (size + cap + pad) + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    note = "   (builtin evaluation set, never trained on)" if dataset == "builtin" else f"   ({dataset})"
    draw.text((pad, 1), "  |  ".join(names) + note, fill=(0, 0, 0))
    for i in range(n):
        r, c = divmod(i, per_row)
        x0 = pad + c * (cell_w + pad)
        y0 = cap + r * (size + cap + pad)
        draw.text((x0, y0), ids[i][:40], fill=(60, 60, 60))
        for j in range(k):
            sheet.paste(Image.fromarray(cols[j][i]), (x0 + j * (size + 2), y0 + cap))
    sheet.save(path, optimize=True)
    return path


__all__ = ["evaluate", "evaluate_predictions", "eval_images", "top1", "contact_sheet"]
