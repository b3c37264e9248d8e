"""The benchmark: every model on every dataset, measured by every metric, with intervals.

``colorbench bench`` (see :mod:`colorbench.bench.cli`) drives
:func:`colorbench.bench.runner.run_benchmark`; results are one JSON per
(model, dataset) validated by :mod:`colorbench.bench.schema`; predictions are
cached by :mod:`colorbench.bench.cache`; :mod:`colorbench.bench.distributed`
makes the same run data-parallel under ``torchrun``.

Importing this package imports nothing heavy: the names below resolve on first use.
"""

from __future__ import annotations

from .._lazy import lazy_api


_API = {
    "BenchConfig": "colorbench.bench.runner",
    "run_benchmark": "colorbench.bench.runner",
    "eval_image": "colorbench.bench.runner",
    "GROUND_TRUTH": "colorbench.bench.runner",
    "PredictionCache": "colorbench.bench.cache",
    "validate_results": "colorbench.bench.schema",
    "ResultsSchemaError": "colorbench.bench.schema",
    "load_results_file": "colorbench.bench.schema",
}

__all__ = list(_API)


__getattr__, __dir__ = lazy_api(__name__, _API, globals())
