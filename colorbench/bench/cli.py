"""``colorbench bench``: run the benchmark (also data-parallel under ``torchrun``).

Examples::

    colorbench bench                                   # every available model on builtin
    colorbench bench --models gray random --metrics auc psnr --out results/
    torchrun --nproc_per_node=2 -m colorbench.cli bench --models gray random
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List


def _split(values: List[str] | None) -> List[str] | None:
    """Accept both ``--models a b`` and ``--models a,b``."""
    if not values:
        return None
    return [v for raw in values for v in raw.split(",") if v]


def cmd_bench(args: argparse.Namespace) -> int:
    from ..registry import UnknownNameError
    from .runner import BenchConfig, run_benchmark

    cfg = BenchConfig(
        models=_split(args.models),
        datasets=_split(args.datasets) or ["builtin"],
        metrics=_split(args.metrics),
        out=args.out,
        cache=None if args.no_cache else args.cache,
        size=args.size,
        batch_size=args.batch_size,
        n_boot=args.n_boot,
        seed=args.seed,
        progress=not args.no_progress,
    )
    try:
        report = run_benchmark(cfg)
    except UnknownNameError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    for ds, reason in report.failed_datasets.items():
        print(f"dataset {ds} unavailable: {reason}", file=sys.stderr)
    for ds, skipped in report.skipped.items():
        for model, reason in skipped.items():
            print(f"[{ds}] skipped model {model}: {reason}")
    for ds, models in report.missing.items():
        for model, metrics in models.items():
            for metric, reason in metrics.items():
                print(f"[{ds}] {model}: metric {metric} missing ({reason})")
    for model in report.predicted:
        print(f"{model}: {report.predicted[model]} predicted, {report.cached.get(model, 0)} from cache")
    for path in report.written:
        print(f"wrote {path}")
    return 1 if report.failed_datasets or not report.written else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmark models on datasets with metrics (writes results JSONs)")
    p.add_argument("--models", nargs="+", default=None,
                   help="model names and/or ground_truth (default: ground_truth + every model whose weights load)")
    p.add_argument("--datasets", "--dataset", nargs="+", default=None,
                   help="builtin, folder:PATH or a hosted dataset name (default: builtin)")
    p.add_argument("--metrics", nargs="+", default=None, help="metric names (default: all registered)")
    p.add_argument("--out", default="results", help="results folder (default: results/)")
    p.add_argument("--cache", default="cache/predictions", help="prediction cache folder")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached predictions")
    p.add_argument("--size", type=int, default=256, help="evaluation side in pixels (default 256)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=cmd_bench)
