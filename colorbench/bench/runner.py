"""The benchmark runner: models x datasets -> predictions (cached) -> metrics -> results JSON.

For every dataset item the evaluation image is the item resized (shorter side to
``size``, antialiased) and centre-cropped to ``size x size``, so batches stack.
Predictions come from the one pipeline (:func:`colorbench.pipeline.colorize_batch`:
L of the evaluation image -> model at its input size -> ab upsampled -> L + ab),
are stored as lossless PNGs in a :class:`~colorbench.bench.cache.PredictionCache`
and reused by later runs, so a killed run resumes where it stopped.

Besides the registered models, the runner evaluates ``ground_truth`` — the
evaluation images themselves as predictions, the ceiling row of the ECCV16
table — as a pseudo-model that is not registered. The ``random`` baseline (any
model with a ``set_pool`` method) draws its colours from the same dataset.

Every metric keeps one row of statistics per image. Under ``torchrun`` each rank
evaluates its shard; rows are gathered and rank 0 computes every value and
bootstrap interval from the union in dataset order, exactly as a single process.
"""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .cache import PredictionCache, atomic_write_text, safe_name
from .schema import SCHEMA_VERSION, dumps, validate_results

log = logging.getLogger(__name__)

GROUND_TRUTH = "ground_truth"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: (model, item id) -> None, called after each prediction is computed and cached
PredictedHook = Callable[[str, str], None]


@dataclass
class BenchConfig:
    """Settings of one benchmark run.

    Attributes:
        models: model names (``ground_truth`` allowed); None: ``ground_truth`` plus
            every registered model whose weights can be loaded.
        datasets: dataset names (``builtin``, ``folder:PATH``, registered hub datasets).
        metrics: metric names; None: every registered metric.
        out: results folder; files go to ``<out>/<dataset>/<model>.json``.
        cache: prediction cache root, or None for no cache.
        size: evaluation side in pixels.
        batch_size: images per model call and per metric update.
        n_boot: bootstrap resamples for the 95% intervals.
        seed: bootstrap seed.
        random_pool_max: at most this many dataset images (evenly spaced) form the
            colour pool of the ``random`` baseline.
        progress: show tqdm progress bars (on rank 0, on a terminal).
    """

    models: Optional[List[str]] = None
    datasets: List[str] = field(default_factory=lambda: ["builtin"])
    metrics: Optional[List[str]] = None
    out: str = "results"
    cache: Optional[str] = "cache/predictions"
    size: int = 256
    batch_size: int = 8
    n_boot: int = 1000
    seed: int = 0
    random_pool_max: int = 1000
    progress: bool = True


@dataclass
class BenchReport:
    """What a run did (on rank 0 it covers all ranks; elsewhere only the local shard)."""

    written: List[Path] = field(default_factory=list)
    skipped: Dict[str, Dict[str, str]] = field(default_factory=dict)  # dataset -> model -> reason
    missing: Dict[str, Dict[str, Dict[str, str]]] = field(default_factory=dict)  # dataset -> model -> metric -> reason
    failed_datasets: Dict[str, str] = field(default_factory=dict)
    predicted: Dict[str, int] = field(default_factory=dict)  # model -> predictions computed in this run
    cached: Dict[str, int] = field(default_factory=dict)  # model -> predictions read from the cache


# -- evaluation images ----------------------------------------------------------
def eval_image(rgb: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``HxWx3`` -> uint8 ``(size, size, 3)``: shorter side to ``size`` (antialiased
    bicubic, PIL), then the centred ``size x size`` crop."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    img = Image.fromarray(rgb, mode="RGB")
    if (nh, nw) != (h, w):
        img = img.resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.array(img.crop((left, top, left + size, top + size)), dtype=np.uint8)  # writable copy


# -- provenance -------------------------------------------------------------------
def git_info(root: Path = REPO_ROOT) -> Dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository holding the package."""
    def run(*args: str) -> Optional[str]:
        try:
            r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> Dict[str, Optional[str]]:
    import colorbench

    out: Dict[str, Optional[str]] = {"colorbench": colorbench.__version__, "python": platform.python_version()}
    for dist in ("torch", "torchvision", "numpy", "scikit-image", "pillow", "lpips", "timm"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# -- models -----------------------------------------------------------------------
@dataclass
class _ModelRun:
    name: str
    kind: str
    weights_id: str
    net: Any = None  # None for the ground truth
    cache: Optional[PredictionCache] = None
    predicted: int = 0
    cached: int = 0

    def predict(self, gt: np.ndarray, ids: Sequence[str], batch_size: int,
                hook: Optional[PredictedHook]) -> np.ndarray:
        """uint8 ``(N, S, S, 3)`` predictions for the evaluation images ``gt``."""
        if self.net is None:
            return gt.copy()
        out: List[Optional[np.ndarray]] = [self.cache.get(i) if self.cache else None for i in ids]
        todo = [k for k, p in enumerate(out) if p is None]
        self.cached += len(ids) - len(todo)
        if todo:
            from ..pipeline import colorize_batch

            preds = colorize_batch([gt[k] for k in todo], self.net, batch_size=batch_size)
            for k, p in zip(todo, preds):
                out[k] = p
                if self.cache is not None:
                    self.cache.put(ids[k], p)
                self.predicted += 1
                if hook is not None:
                    hook(self.name, ids[k])
        return np.stack(out)  # type: ignore[arg-type]


def _load_model(name: str) -> Any:
    from ..models import create_model

    return create_model(name, pretrained=True)


def _model_runs(names: Optional[Sequence[str]], pool: Callable[[], List[np.ndarray]]
                ) -> Tuple[List[_ModelRun], Dict[str, str]]:
    """Instantiate the models; those that cannot be loaded are returned as ``{name: reason}``."""
    from ..models import list_models, model_info
    from ..weights import WeightsCorrupted, WeightsUnavailable

    explicit = names is not None
    wanted = list(names) if explicit else [GROUND_TRUTH, *list_models()]
    known = set(list_models())
    unknown = [n for n in wanted if n != GROUND_TRUTH and n not in known]
    if unknown:
        from ..models import MODELS

        MODELS.get(unknown[0])  # raises UnknownNameError with a did-you-mean hint
    runs: List[_ModelRun] = []
    skipped: Dict[str, str] = {}
    for name in dict.fromkeys(wanted):
        if name == GROUND_TRUTH:
            runs.append(_ModelRun(GROUND_TRUTH, "reference", "identity"))
            continue
        try:
            net = _load_model(name)
        except (WeightsUnavailable, WeightsCorrupted) as e:
            skipped[name] = f"{type(e).__name__}: {e}"
            log.info("skipping model %s: %s", name, skipped[name])
            continue
        except Exception as e:  # a model that cannot be built must not stop the other models
            skipped[name] = f"{type(e).__name__}: {e}"
            log.warning("skipping model %s: it failed to load", name, exc_info=True)
            continue
        if hasattr(net, "set_pool"):
            net.set_pool(pool())
        runs.append(_ModelRun(name, str(model_info(name).get("kind", "")), str(getattr(net, "weights_id", ""))))
        runs[-1].net = net
    return runs, skipped


# -- metrics ----------------------------------------------------------------------
def _restore(metric: Any, ids: List[str], stats: np.ndarray) -> None:
    """Put gathered per-image rows back into an accumulator (base-class state layout)."""
    metric.reset()
    metric._ids = list(ids)
    metric._rows = list(stats)


def _metric_meta(metric: Any) -> Dict[str, Any]:
    return {"version": str(getattr(metric, "version", "")), "definition": str(getattr(metric, "definition", ""))}


def _curve(extra: Dict[str, Any]) -> Optional[Dict[str, List[float]]]:
    """The cumulative curve a metric exposes in its extras, as ``{"x": [...], "y": [...]}``."""
    y = extra.get("curve")
    if y is None:
        return None
    y = np.asarray(y, dtype=float).ravel()
    x = extra.get("thresholds")
    x = np.arange(len(y), dtype=float) if x is None else np.asarray(x, dtype=float).ravel()
    return {"x": x.tolist(), "y": y.tolist()} if len(x) == len(y) else None


# -- the run ----------------------------------------------------------------------
def _pool_images(dataset: Any, size: int, limit: int) -> List[np.ndarray]:
    n = len(dataset)
    idx = np.unique(np.linspace(0, n - 1, num=min(n, max(2, limit))).round().astype(int))
    return [eval_image(dataset[int(i)].rgb, size) for i in idx]


def _evaluate_shard(cfg: BenchConfig, shard: Any, runs: List[_ModelRun], metrics: Dict[str, Any],
                    missing: Dict[str, Dict[str, str]], hook: Optional[PredictedHook], show: bool
                    ) -> Dict[str, Dict[str, List[Tuple[str, np.ndarray]]]]:
    from tqdm import tqdm

    from ..metrics import EvalBatch, MetricUnavailable

    rows: Dict[str, Dict[str, List[Tuple[str, np.ndarray]]]] = {r.name: {m: [] for m in metrics} for r in runs}
    items = list(shard)
    bs = max(1, int(cfg.batch_size))
    bar = tqdm(total=len(items), desc=f"bench {shard.name}", unit="img", disable=None if show else True)
    try:
        for start in range(0, len(items), bs):
            chunk = items[start : start + bs]
            ids = [it.id for it in chunk]
            gt = np.stack([eval_image(it.rgb, cfg.size) for it in chunk])
            labels = [it.label for it in chunk]
            for run in runs:
                pred = run.predict(gt, ids, bs, hook)
                batch = EvalBatch(ids=ids, pred_rgb=pred, gt_rgb=gt, labels=labels)
                for mname, metric in metrics.items():
                    if mname in missing[run.name]:
                        continue
                    try:
                        metric.reset()
                        metric.update(batch)
                        stats = metric.stats()
                    except MetricUnavailable as e:
                        missing[run.name][mname] = str(e) or type(e).__name__
                        log.info("metric %s unavailable for %s: %s", mname, run.name, e)
                        continue
                    if len(stats) != len(ids):
                        raise RuntimeError(f"metric {mname} returned {len(stats)} rows for {len(ids)} images")
                    rows[run.name][mname].extend(zip(ids, stats))
            bar.update(len(chunk))
    finally:
        bar.close()
    return rows


def _result_doc(cfg: BenchConfig, dataset: Any, run: _ModelRun, metrics: Dict[str, Any],
                rows: Dict[str, List[Tuple[str, np.ndarray]]], missing: Dict[str, str],
                world: int) -> Dict[str, Any]:
    from ..metrics import MetricUnavailable

    order = {it.id: i for i, it in enumerate(dataset)}
    doc_metrics: Dict[str, Any] = {}
    per_image: Dict[str, Dict[str, float]] = {}
    curves: Dict[str, Any] = {}
    classifier = None
    for mname, metric in metrics.items():
        meta = _metric_meta(metric)
        hib = bool(getattr(metric, "higher_is_better", True))
        reason = missing.get(mname)
        if reason is None:
            got = sorted(rows[mname], key=lambda r: order[r[0]])
            if len(got) != len(dataset) or len({i for i, _ in got}) != len(dataset):
                raise RuntimeError(f"{run.name}/{mname}: {len(got)} per-image rows for {len(dataset)} images")
            ids = [i for i, _ in got]
            stats = np.stack([np.asarray(r, dtype=np.float64) for _, r in got])
            _restore(metric, ids, stats)
            try:
                res = metric.compute(n_boot=cfg.n_boot, seed=cfg.seed)
            except MetricUnavailable as e:
                reason = str(e) or type(e).__name__
            else:
                entry = res.to_json()
                entry.update(meta)
                c = _curve(res.extra)
                if c is not None:  # kept once, under "curves"
                    curves[mname] = c
                    entry.pop("curve", None)
                    entry.pop("thresholds", None)
                doc_metrics[mname] = entry
                per_image[mname] = {i: res.per_image[i] for i in ids}
                if res.extra.get("classifier"):
                    classifier = classifier or res.extra["classifier"]
                continue
        doc_metrics[mname] = {"value": None, "ci": None, "higher_is_better": hib, "missing": reason, **meta}
    return {
        "schema_version": SCHEMA_VERSION,
        "model": run.name,
        "dataset": dataset.name,
        "kind": run.kind,
        "weights_id": run.weights_id,
        "dataset_fingerprint": dataset.fingerprint,
        "dataset_info": dataset.info,
        "n_images": len(dataset),
        "size": cfg.size,
        "metrics": doc_metrics,
        "per_image": per_image,
        "classifier": classifier,
        "curves": curves,
        "versions": package_versions(),
        "git": git_info(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": {"batch_size": cfg.batch_size, "n_boot": cfg.n_boot, "seed": cfg.seed, "world_size": world,
                   "pipeline": "colorbench.pipeline.colorize_batch", "eval_image": "shorter side to size "
                   "(PIL bicubic, antialiased), centre crop size x size"},
    }


def results_path(out: Path, dataset: str, model: str) -> Path:
    """``<out>/<dataset>/<model>.json`` with both names made file-system safe."""
    return Path(out) / dataset_dirname(dataset) / f"{safe_name(model)}.json"


def dataset_dirname(dataset: str) -> str:
    """Folder name of a dataset's results (``folder:PATH`` names are sanitised and hashed)."""
    import hashlib
    import re

    if re.fullmatch(r"[A-Za-z0-9._-]+", dataset) and dataset not in (".", ".."):
        return dataset
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._")[-48:] or "dataset"
    return f"{stem}-{hashlib.sha256(dataset.encode()).hexdigest()[:8]}"


def _update_skipped(path: Path, skipped: Dict[str, str], ran: Sequence[str]) -> None:
    import json

    old: Dict[str, str] = {}
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
    merged = {k: v for k, v in old.items() if k not in ran}
    merged.update(skipped)
    if merged:
        atomic_write_text(path, json.dumps(merged, indent=1, sort_keys=True) + "\n")
    elif path.exists():
        path.unlink()


def run_benchmark(cfg: BenchConfig, on_predicted: Optional[PredictedHook] = None) -> BenchReport:
    """Run every model on every dataset with every metric and write the results JSONs.

    Args:
        cfg: the run's settings.
        on_predicted: called as ``hook(model, item_id)`` after each newly computed
            prediction is safely cached (tests use it to interrupt a run).

    Returns:
        A :class:`BenchReport`. Under ``torchrun`` only rank 0 writes files.
    """
    from ..data import load_dataset
    from ..metrics import MetricUnavailable, create_metric, list_metrics
    from . import distributed

    ctx = distributed.init()
    report = BenchReport()
    try:
        metric_names = list(cfg.metrics) if cfg.metrics else list_metrics()
        for ds_name in cfg.datasets:
            try:
                dataset = load_dataset(ds_name)
            except (FileNotFoundError, RuntimeError, ConnectionError) as e:
                report.failed_datasets[ds_name] = f"{type(e).__name__}: {e}"
                log.error("dataset %s unavailable: %s", ds_name, e)
                continue
            shard = dataset.shard(ctx.rank, ctx.world) if ctx.active else dataset
            pool_cache: List[np.ndarray] = []

            def pool() -> List[np.ndarray]:
                if not pool_cache:
                    pool_cache.extend(_pool_images(dataset, cfg.size, cfg.random_pool_max))
                return pool_cache

            runs, skipped = _model_runs(cfg.models, pool)
            metrics: Dict[str, Any] = {}
            unavailable: Dict[str, str] = {}
            for m in metric_names:
                try:
                    metrics[m] = create_metric(m)
                except MetricUnavailable as e:
                    unavailable[m] = str(e) or type(e).__name__
                    log.info("metric %s unavailable: %s", m, e)
            missing = {r.name: dict(unavailable) for r in runs}
            for r in runs:
                if cfg.cache and r.net is not None:
                    r.cache = PredictionCache(cfg.cache, r.name, r.weights_id, dataset.fingerprint, cfg.size)
            rows = _evaluate_shard(cfg, shard, runs, metrics, missing, on_predicted, cfg.progress and ctx.is_main)
            gathered = distributed.all_gather(ctx, {"rows": rows, "missing": missing,
                                                    "counts": {r.name: (r.predicted, r.cached) for r in runs}})
            for g in gathered:
                for name, (p, c) in g["counts"].items():
                    report.predicted[name] = report.predicted.get(name, 0) + p
                    report.cached[name] = report.cached.get(name, 0) + c
            report.skipped[dataset.name] = skipped
            if not ctx.is_main:
                continue
            ds_missing: Dict[str, Dict[str, str]] = {}
            for run in runs:
                merged_rows = {m: [row for g in gathered for row in g["rows"][run.name][m]] for m in metrics}
                merged_missing: Dict[str, str] = {}
                for g in gathered:
                    merged_missing.update(g["missing"][run.name])
                doc = _result_doc(cfg, dataset, run, {**metrics, **{m: _Placeholder(m) for m in unavailable}},
                                  merged_rows, merged_missing, ctx.world)
                validate_results(doc)
                path = results_path(Path(cfg.out), dataset.name, run.name)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, dumps(doc))
                report.written.append(path)
                ds_missing[run.name] = {m: e["missing"] for m, e in doc["metrics"].items() if e["value"] is None}
            report.missing[dataset.name] = ds_missing
            _update_skipped(Path(cfg.out) / dataset_dirname(dataset.name) / "skipped.json", skipped,
                            [r.name for r in runs])
        distributed.barrier(ctx)
    finally:
        distributed.shutdown(ctx)
    return report


class _Placeholder:
    """Stands for a metric whose accumulator could not even be created."""

    def __init__(self, name: str) -> None:
        from ..metrics import METRICS

        meta = METRICS.meta(name) if name in METRICS else {}
        self.name = name
        self.higher_is_better = bool(meta.get("higher_is_better", True))
        self.version = ""
        self.definition = ""


__all__ = ["BenchConfig", "BenchReport", "run_benchmark", "eval_image", "GROUND_TRUTH", "results_path",
           "dataset_dirname", "git_info", "package_versions"]
