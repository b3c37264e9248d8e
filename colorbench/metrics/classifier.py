"""Semantic interpretability: an ImageNet classifier's top-1 on the colorizations.

* ``top1``: accuracy of the classifier's top-1 class on the colorization against
  the item's ImageNet label, over the items that have one (ECCV16's "VGG top-1").
* ``top1_agree``: fraction of images whose top-1 class on the colorization equals
  the top-1 class on the original colour image (always available).

The classifier is :func:`colorbench.classifiers.load_classifier` ``("auto")``:
torchvision's VGG-16 (the paper's) when its weights are reachable, else the offline
EfficientNet-Lite0; the results name it (``extra()["classifier"]``). Images are
resized (shorter side) and centre-cropped to 224 by :meth:`Classifier.logits`.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from ..classifiers import Classifier, load_classifier
from ..weights import WeightsCorrupted, WeightsUnavailable
from . import EvalBatch, Metric, MetricResult, MetricUnavailable, bootstrap_ci, register_metric

log = logging.getLogger(__name__)

DEFAULT_BATCH = 8  # images per forward pass; larger batches were no faster on a 2-core CPU


# -----------------------------------------------------------------------------
# pure functions
# -----------------------------------------------------------------------------
@torch.inference_mode()
def top1_classes(rgb: Union[np.ndarray, torch.Tensor], classifier: Classifier, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
    """ImageNet top-1 class index per image, int64 ``(N,)``.

    ``rgb``: uint8 ``(N, H, W, 3)`` numpy or uint8 ``(N, 3, H, W)`` tensor.
    """
    if isinstance(rgb, np.ndarray):
        arr = rgb[None] if rgb.ndim == 3 else rgb
        t = torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2)
    else:
        t = rgb
    out = [classifier.logits(t[s : s + batch_size]).argmax(1) for s in range(0, t.shape[0], batch_size)]
    return torch.cat(out).numpy().astype(np.int64) if out else np.zeros(0, dtype=np.int64)


def top1_accuracy(pred_classes: np.ndarray, labels: List[Optional[int]]) -> Optional[float]:
    """Fraction of labelled images whose predicted class equals the label; None when none is labelled."""
    mask = np.array([lab is not None for lab in labels], dtype=bool)
    if not mask.any():
        return None
    lab = np.array([-1 if lab is None else int(lab) for lab in labels])
    return float(np.mean(np.asarray(pred_classes)[mask] == lab[mask]))


def top1_agreement(pred_classes: np.ndarray, gt_classes: np.ndarray) -> float:
    """Fraction of images whose top-1 on the colorization equals the top-1 on the original."""
    return float(np.mean(np.asarray(pred_classes) == np.asarray(gt_classes)))


# -----------------------------------------------------------------------------
# accumulators
# -----------------------------------------------------------------------------
class _ClassifierMetric(Metric):
    """Shared: a cached classifier, batched forward passes shared between metrics via the batch cache.

    Args:
        classifier: ``"auto"``, ``"vgg16"``, ``"efficientnet_lite0"`` or a :class:`Classifier`.
        batch_size: images per forward pass.
    """

    version = "1"

    def __init__(self, classifier: Union[str, Classifier] = "auto", batch_size: int = DEFAULT_BATCH) -> None:
        self._spec = classifier
        self._clf: Optional[Classifier] = classifier if isinstance(classifier, Classifier) else None
        self.batch_size = int(batch_size)
        # top-1 of original images by content digest: the same ground truth comes back for every
        # model evaluated on a dataset; kept across reset() (it holds no per-run statistics)
        self._gt_top1: Dict[bytes, int] = {}
        super().__init__()

    @property
    def classifier(self) -> Classifier:
        """The classifier, loaded on first use (cached by :func:`load_classifier`)."""
        if self._clf is None:
            try:
                self._clf = load_classifier(str(self._spec))
            except (WeightsUnavailable, WeightsCorrupted) as e:
                raise MetricUnavailable(f"no ImageNet classifier available: {e}") from None
        return self._clf

    def _classes(self, batch: EvalBatch, which: str) -> np.ndarray:
        clf = self.classifier
        make = self._gt_classes if which == "gt" else lambda b: top1_classes(b.rgb_t("pred"), clf, self.batch_size)
        return batch.cached(f"top1:{clf.name}:{id(clf)}:{which}", lambda: make(batch))

    def _gt_classes(self, batch: EvalBatch) -> np.ndarray:
        keys = [hashlib.blake2b(memoryview(np.ascontiguousarray(g)).cast("B"), digest_size=16).digest()
                for g in batch.gt_rgb]
        todo = [i for i, k in enumerate(keys) if k not in self._gt_top1]
        if todo:
            got = top1_classes(batch.rgb_t("gt")[todo], self.classifier, self.batch_size)
            self._gt_top1.update({keys[i]: int(c) for i, c in zip(todo, got)})
        return np.array([self._gt_top1[k] for k in keys], dtype=np.int64)

    def extra(self, stats: np.ndarray) -> Dict[str, Any]:
        return {"classifier": self.classifier.name}


@register_metric(higher_is_better=True)
class Top1(_ClassifierMetric):
    """Rows ``(N, 2)``: ``[correct, labelled]``; value = sum(correct) / sum(labelled)."""

    name = "top1"
    definition = (
        "Classifier top-1 accuracy on the colorizations against the items' ImageNet labels, over labelled items "
        "only (ECCV16 'VGG top-1'; VGG-16 when reachable, else EfficientNet-Lite0, see 'classifier'; shorter side "
        "resized and centre crop 224)."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        labels = list(batch.labels) if batch.labels else [None] * len(batch.ids)
        if len(labels) != len(batch.ids):
            raise ValueError(f"{len(labels)} labels for {len(batch.ids)} images")
        mask = np.array([lab is not None for lab in labels], dtype=np.float64)
        rows = np.zeros((len(labels), 2))
        rows[:, 1] = mask
        if mask.any():  # no forward pass when nothing is labelled
            pred = self._classes(batch, "pred")
            lab = np.array([-1 if lab is None else int(lab) for lab in labels])
            rows[:, 0] = (pred == lab) & (mask > 0)
        return rows

    def aggregate(self, stats: np.ndarray) -> float:
        n = stats[:, 1].sum()
        return float(stats[:, 0].sum() / n) if n > 0 else float("nan")

    def per_image_value(self, row: np.ndarray) -> Optional[float]:  # type: ignore[override]
        return float(row[0]) if row[1] > 0 else None

    def compute(self, n_boot: int = 1000, seed: int = 0) -> MetricResult:
        stats = self.stats()
        if stats.shape[0] == 0:
            raise ValueError(f"metric {self.name}: no images were added")
        per_image = {i: self.per_image_value(r) for i, r in zip(self._ids, stats)}
        if stats[:, 1].sum() == 0:
            return MetricResult(self.name, None, None, per_image, self.higher_is_better,  # type: ignore[arg-type]
                                extra={}, missing="no image of this dataset has an ImageNet label")
        labelled = stats[stats[:, 1] > 0]  # bootstrap over the labelled images
        return MetricResult(
            name=self.name,
            value=self.aggregate(stats),
            ci=bootstrap_ci(labelled, self.aggregate, n_boot=n_boot, seed=seed),
            per_image=per_image,  # type: ignore[arg-type]
            higher_is_better=self.higher_is_better,
            extra={**self.extra(stats), "n_labelled": int(labelled.shape[0])},
        )


@register_metric(higher_is_better=True)
class Top1Agree(_ClassifierMetric):
    """Rows ``(N, 1)``: 1 where the top-1 on the colorization equals the top-1 on the original."""

    name = "top1_agree"
    definition = (
        "Agreement of the classifier's top-1 class on the colorization with its top-1 on the original colour image "
        "(fraction of images; VGG-16 when reachable, else EfficientNet-Lite0, see 'classifier')."
    )

    def image_stats(self, batch: EvalBatch) -> np.ndarray:
        return (self._classes(batch, "pred") == self._classes(batch, "gt")).astype(np.float64)[:, None]


__all__ = ["top1_classes", "top1_accuracy", "top1_agreement", "Top1", "Top1Agree"]
