"""Leaderboard plots (matplotlib, Agg canvas, no pyplot global state).

* :func:`plot_auc_curves`: the cumulative ab-error curves of every model on one
  chart (fraction of pixels whose ab error is within t, for t = 0..150), the
  curves the AuC metric integrates; file ``auc_curves_<dataset>.png``.
* :func:`plot_metric_bars`: one bar per model with its bootstrap 95% interval as
  error bar; file ``metric_<name>_<dataset>.png``. Infinite values (the ground
  truth's PSNR) cannot be drawn as bars and are listed under the chart instead.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import pandas as pd

from ..bench.cache import atomic_write_bytes

GROUND_TRUTH = "ground_truth"
CURVE_METRIC = "auc"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _style(model: str, kind: str) -> Dict[str, Any]:
    if model == GROUND_TRUTH:
        return {"color": "black", "linestyle": "--", "linewidth": 1.5}
    if kind == "baseline":
        return {"linestyle": ":", "linewidth": 1.5}
    return {"linewidth": 1.8}


def plot_auc_curves(docs: Sequence[Dict[str, Any]], dataset: str, out_dir: Path,
                    metric: str = CURVE_METRIC) -> Optional[Path]:
    """Cumulative ab-error curves of every model on ``dataset``; None if no document has one."""
    curves = [(d, d.get("curves", {}).get(metric)) for d in docs if d["dataset"] == dataset]
    curves = [(d, c) for d, c in curves if c and c.get("x") and c.get("y")]
    if not curves:
        return None
    fig = _figure(7, 4.8)
    ax = fig.add_subplot(1, 1, 1)

    def auc_of(d: Dict[str, Any]) -> float:
        v = d["metrics"].get(metric, {}).get("value")
        return float(v) if isinstance(v, (int, float)) else -1.0

    for d, c in sorted(curves, key=lambda dc: -auc_of(dc[0])):
        a = auc_of(d)
        label = d["model"] + (f" (AuC {a:.3f})" if a >= 0 else "")
        ax.plot(c["x"], c["y"], label=label, **_style(d["model"], d.get("kind", "")))
    ax.set_xlabel("threshold t on the ab error (Lab units)")
    ax.set_ylabel("fraction of pixels with error ≤ t")
    ax.set_title(f"Cumulative ab error — {dataset}")
    ax.set_ylim(0, 1.01)
    ax.set_xlim(min(c["x"][0] for _, c in curves), max(c["x"][-1] for _, c in curves))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, Path(out_dir) / f"auc_curves_{_slug(dataset)}.png")


def _axis_top(vals: np.ndarray, hi: np.ndarray) -> Optional[float]:
    """An upper y limit that cuts a single outlying bar (more than 3x every other), else None."""
    if len(vals) < 3 or (vals < 0).any():
        return None
    order = np.argsort(vals)
    rest = vals[order[:-1]] + hi[order[:-1]]
    if vals[order[-1]] <= 3 * rest.max() or rest.max() <= 0:
        return None
    return float(1.35 * rest.max())


def plot_metric_bars(long: pd.DataFrame, dataset: str, metric: str, out_dir: Path) -> Optional[Path]:
    """Bar chart of one metric on one dataset with 95% interval error bars; None if no value."""
    sub = long[(long["dataset"] == dataset) & (long["metric"] == metric) & long["value"].notna()]
    if sub.empty:
        return None
    hib = bool(sub["higher_is_better"].iloc[0])
    finite = sub[sub["value"].map(math.isfinite)].sort_values("value", ascending=not hib)
    infinite = sub[~sub["value"].map(math.isfinite)]
    fig = _figure(max(4.0, 0.9 * len(sub) + 2), 4.2)
    ax = fig.add_subplot(1, 1, 1)
    if not finite.empty:
        vals = finite["value"].to_numpy(float)
        lo = np.nan_to_num(vals - finite["ci_lo"].to_numpy(float), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
        hi = np.nan_to_num(finite["ci_hi"].to_numpy(float) - vals, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0)
        colors = ["0.2" if m == GROUND_TRUTH else ("0.65" if k == "baseline" else "C0")
                  for m, k in zip(finite["model"], finite["kind"])]
        bars = ax.bar(range(len(finite)), vals, yerr=[lo, hi], capsize=4, color=colors)
        ax.set_xticks(range(len(finite)))
        ax.set_xticklabels(list(finite["model"]), rotation=30, ha="right")
        top = _axis_top(vals, hi)
        if top is not None:  # one bar (e.g. the ground truth's capped PSNR) would flatten the others
            ax.set_ylim(min(0.0, float(np.min(vals - lo))), top)
        for b, v, h in zip(bars, vals, hi):
            x = b.get_x() + b.get_width() / 2
            if top is not None and v > top:  # label inside the cut bar
                ax.annotate(f"{v:.3g}\n(axis cut)", (x, top), ha="center", va="top", fontsize=7, color="white",
                            xytext=(0, -4), textcoords="offset points")
            else:
                ax.annotate(f"{v:.3g}", (x, v + h), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
        ax.margins(y=0.08)
    arrow = "higher is better" if hib else "lower is better"
    ax.set_title(f"{metric} ({arrow}) — {dataset}, 95% bootstrap intervals")
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    if not infinite.empty:
        txt = ", ".join(f"{m}: {'∞' if v > 0 else '-∞'}" for m, v in zip(infinite["model"], infinite["value"]))
        fig.text(0.01, -0.02, f"not drawn: {txt}", fontsize=8, ha="left", va="top")
    return _save(fig, Path(out_dir) / f"metric_{_slug(metric)}_{_slug(dataset)}.png")


def plot_all(docs: Sequence[Dict[str, Any]], long: pd.DataFrame, dataset: str, out_dir: Path) -> List[Path]:
    """Every plot for one dataset into ``out_dir``."""
    paths: List[Path] = []
    p = plot_auc_curves(docs, dataset, out_dir)
    if p:
        paths.append(p)
    for metric in dict.fromkeys(long.loc[long["dataset"] == dataset, "metric"]):
        p = plot_metric_bars(long, dataset, metric, out_dir)
        if p:
            paths.append(p)
    return paths


__all__ = ["plot_auc_curves", "plot_metric_bars", "plot_all"]
