"""The leaderboard: tables and plots built from the benchmark's results JSONs.

``colorbench leaderboard build --results results/ --out results/`` calls
:func:`build_leaderboard`. The app calls :func:`leaderboard_frame`. Importing
this package imports neither pandas nor matplotlib; they load on first use.
"""

from __future__ import annotations

from .._lazy import lazy_api

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

log = logging.getLogger(__name__)

_API = {
    "leaderboard_frame": "colorbench.leaderboard.table",
    "load_results": "colorbench.leaderboard.table",
    "load_documents": "colorbench.leaderboard.table",
    "wide_frame": "colorbench.leaderboard.table",
    "write_tables": "colorbench.leaderboard.table",
    "plot_auc_curves": "colorbench.leaderboard.plots",
    "plot_metric_bars": "colorbench.leaderboard.plots",
}

__all__ = ["build_leaderboard", *_API]


def build_leaderboard(results_dir: Union[str, os.PathLike] = "results",
                      out_dir: Optional[Union[str, os.PathLike]] = None) -> Dict[str, List[Path]]:
    """Build tables (markdown, CSV, HTML) and plots from every results JSON.

    Writes ``<out>/leaderboard.{md,csv,html}`` over all datasets and, per dataset,
    ``<out>/<dataset>/leaderboard.{md,csv,html}``, ``auc_curves_<dataset>.png`` and
    ``metric_<name>_<dataset>.png``.

    Returns:
        ``{"tables": [...], "plots": [...]}`` paths written (empty when there are no results).
    """
    from ..bench.runner import dataset_dirname
    from .plots import plot_all
    from .table import documents_frame, load_documents, load_fooled, load_skipped, write_tables

    out = Path(out_dir if out_dir is not None else results_dir)
    docs = load_documents(results_dir)
    written: Dict[str, List[Path]] = {"tables": [], "plots": []}
    if not docs:
        log.warning("no valid results under %s", results_dir)
        return written
    long = documents_frame(docs)
    fooled = load_fooled(results_dir)
    skipped = load_skipped(results_dir)
    all_skipped = {f"{m} ({ds})": r for ds, d in skipped.items() for m, r in d.items()}
    written["tables"] += write_tables(long, out, fooled=fooled, skipped=all_skipped, with_dataset=True)
    for dataset in sorted(long["dataset"].unique()):
        sub = long[long["dataset"] == dataset]
        folder = out / dataset_dirname(dataset)
        written["tables"] += write_tables(sub, folder, fooled=fooled, skipped=skipped.get(dataset_dirname(dataset)),
                                          title=f"ColorBench leaderboard — {dataset}")
        written["plots"] += plot_all([d for d in docs if d["dataset"] == dataset], sub, dataset, folder)
    return written


__getattr__, __dir__ = lazy_api(__name__, _API, globals())
