"""Leaderboard tables from results JSONs: a long frame, a display frame, markdown/CSV/HTML.

* :func:`load_documents` reads and validates ``<results>/<dataset>/<model>.json``.
* :func:`load_results` turns them into a long ``pandas.DataFrame`` (one row per
  dataset x model x metric).
* :func:`leaderboard_frame` is the display table the app shows: one row per model
  per dataset, ``value ± half-width of the 95% interval`` per metric, arrows for
  higher/lower-is-better, the ground truth and baselines marked, sorted by
  ``auc_rebal``, and an optional ``fooled`` column from the human study.
* :func:`write_tables` writes markdown, CSV (numbers with both interval bounds)
  and HTML.

``colorbench study stats`` writes ``<results>/study/fooled.json`` as
``{model: {"rate", "se", "n_participants", "n_judgments"}}`` with rate and se in
percent (see ``colorbench.study.stats.write_fooled``); when present it becomes a
column (kept internally as fractions).
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import pandas as pd

from ..bench.cache import atomic_write_text
from ..bench.schema import ResultsSchemaError, decode_number, load_results_file

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

#: column order of the known metrics (others follow alphabetically)
METRIC_ORDER = ["auc", "auc_rebal", "psnr", "ssim", "mse", "lpips", "top1", "top1_agree", "colorfulness",
                "sat_diff", "acc_u", "acc_v"]
SORT_METRICS = ["auc_rebal", "auc"]
GROUND_TRUTH = "ground_truth"
STUDY_FILE = Path("study") / "fooled.json"
UP, DOWN = "↑", "↓"


def _kind_label(model: str, kind: str) -> str:
    if model == GROUND_TRUTH:
        return "ground truth (ceiling)"
    if kind == "baseline":
        return "baseline"
    return kind or "model"


# -- loading --------------------------------------------------------------------
def load_documents(results_dir: PathLike, dataset: Optional[str] = None) -> List[Dict[str, Any]]:
    """Every valid results document under ``results_dir`` (``<dataset>/<model>.json``).

    Invalid files are skipped with a warning naming every problem; ``skipped.json``
    and the ``study`` folder are not results.
    """
    root = Path(results_dir)
    docs: List[Dict[str, Any]] = []
    if not root.is_dir():
        return docs
    for path in sorted(root.glob("*/*.json")):
        if path.name == "skipped.json" or path.parent.name == "study":
            continue
        try:
            doc = load_results_file(path)
        except ResultsSchemaError as e:
            log.warning("ignoring %s", e)
            continue
        if dataset is None or doc["dataset"] == dataset:
            doc["_path"] = str(path)
            docs.append(doc)
    return docs


def load_skipped(results_dir: PathLike) -> Dict[str, Dict[str, str]]:
    """``{dataset folder: {model: reason}}`` from the runner's ``skipped.json`` files."""
    out: Dict[str, Dict[str, str]] = {}
    for path in sorted(Path(results_dir).glob("*/skipped.json")):
        try:
            out[path.parent.name] = {str(k): str(v) for k, v in json.loads(path.read_text()).items()}
        except (ValueError, AttributeError):
            log.warning("ignoring unreadable %s", path)
    return out


def load_fooled(results_dir: PathLike) -> Dict[str, Dict[str, float]]:
    """``{model: {"rate", "se", "n"}}`` (fractions; n = participants) from ``<results>/study/fooled.json``.

    The file holds percentages, as ``colorbench.study.stats.write_fooled`` writes them.
    Empty if absent.
    """
    path = Path(results_dir) / STUDY_FILE
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        out = {}
        for m, v in raw.items():
            row = {k: float(v[k]) / 100.0 for k in ("rate", "se") if v.get(k) is not None}
            n = v.get("n_participants", v.get("n"))
            if n is not None:
                row["n"] = float(n)
            out[str(m)] = row
        return out
    except (ValueError, AttributeError, TypeError) as e:
        log.warning("ignoring unreadable %s (%s)", path, e)
        return {}


def _num(v: Any) -> float:
    x = decode_number(v)
    return math.nan if x is None else x


def documents_frame(docs: Sequence[Dict[str, Any]]) -> pd.DataFrame:
    """Long frame of already-loaded documents (see :func:`load_results`)."""
    rows = []
    for doc in docs:
        for metric, m in doc["metrics"].items():
            ci = m.get("ci") or [None, None]
            rows.append({
                "dataset": doc["dataset"],
                "model": doc["model"],
                "kind": doc.get("kind", ""),
                "metric": metric,
                "value": _num(m.get("value")),
                "ci_lo": _num(ci[0]),
                "ci_hi": _num(ci[1]),
                "higher_is_better": bool(m.get("higher_is_better", True)),
                "missing": m.get("missing"),
                "n_images": doc.get("n_images"),
                "weights_id": doc.get("weights_id"),
                "classifier": doc.get("classifier"),
                "date": doc.get("date"),
                "path": doc.get("_path"),
            })
    cols = ["dataset", "model", "kind", "metric", "value", "ci_lo", "ci_hi", "higher_is_better", "missing",
            "n_images", "weights_id", "classifier", "date", "path"]
    return pd.DataFrame(rows, columns=cols)


def load_results(results_dir: PathLike, dataset: Optional[str] = None) -> pd.DataFrame:
    """Long-format frame: one row per (dataset, model, metric).

    Columns: ``dataset, model, kind, metric, value, ci_lo, ci_hi, higher_is_better,
    missing, n_images, weights_id, classifier, date, path``. Missing metrics have
    ``value = NaN`` and their reason in ``missing``; infinite values stay ``inf``.
    """
    return documents_frame(load_documents(results_dir, dataset))


# -- shaping -----------------------------------------------------------------------
def metric_columns(long: pd.DataFrame) -> List[str]:
    present = list(dict.fromkeys(long["metric"])) if len(long) else []
    known = [m for m in METRIC_ORDER if m in present]
    return known + sorted(m for m in present if m not in METRIC_ORDER)


def _sort_key_frame(wide: pd.DataFrame) -> pd.DataFrame:
    key = None
    for m in SORT_METRICS:
        if m in wide.columns:
            key = m
            break
    if key is None:
        return wide.sort_values(["dataset", "model"], kind="stable")
    tmp = wide.assign(_k=wide[key].where(wide[key].notna(), -math.inf))
    return tmp.sort_values(["dataset", "_k", "model"], ascending=[True, False, True], kind="stable").drop(columns="_k")


def wide_frame(long: pd.DataFrame) -> pd.DataFrame:
    """Numbers per (dataset, model): ``<metric>``, ``<metric>_lo``, ``<metric>_hi`` columns,
    sorted by ``auc_rebal`` (then ``auc``) within each dataset, best first."""
    metrics = metric_columns(long)
    recs: Dict[tuple, Dict[str, Any]] = {}
    for r in long.itertuples(index=False):
        rec = recs.setdefault((r.dataset, r.model), {"dataset": r.dataset, "model": r.model,
                                                      "type": _kind_label(r.model, r.kind)})
        rec[r.metric] = r.value
        rec[f"{r.metric}_lo"] = r.ci_lo
        rec[f"{r.metric}_hi"] = r.ci_hi
    cols = ["dataset", "model", "type"] + [c for m in metrics for c in (m, f"{m}_lo", f"{m}_hi")]
    wide = pd.DataFrame(list(recs.values()), columns=cols)
    return _sort_key_frame(wide).reset_index(drop=True)


def fmt_number(v: float) -> str:
    """Compact display of a metric value (``∞`` for infinity, ``—`` for missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    a = abs(v)
    if a >= 100:
        return f"{v:.1f}"
    if a >= 10:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_cell(v: float, lo: float, hi: float) -> str:
    """``value ± half-width`` of the interval (``value`` alone when the interval is degenerate or infinite)."""
    s = fmt_number(v)
    if s == "—" or any(map(lambda x: x is None or not math.isfinite(x), (v, lo, hi))):
        return s
    half = fmt_number((hi - lo) / 2.0)
    return s if float(half) == 0 else f"{s} ± {half}"


def column_label(metric: str, higher_is_better: bool) -> str:
    return f"{metric} {UP if higher_is_better else DOWN}"


def display_frame(long: pd.DataFrame, fooled: Optional[Dict[str, Dict[str, float]]] = None,
                  with_dataset: bool = True) -> pd.DataFrame:
    """Strings for people: one row per model per dataset, ``value ± half-width`` cells."""
    wide = wide_frame(long)
    hib = {r.metric: bool(r.higher_is_better) for r in long.itertuples(index=False)}
    out = pd.DataFrame({"dataset": wide["dataset"], "model": wide["model"], "type": wide["type"]})
    for m in metric_columns(long):
        out[column_label(m, hib.get(m, True))] = [fmt_cell(v, lo, hi) for v, lo, hi in
                                                 zip(wide[m], wide[f"{m}_lo"], wide[f"{m}_hi"])]
    if fooled:
        out[f"fooled {UP}"] = [_fmt_fooled(fooled.get(m)) for m in wide["model"]]
    if not with_dataset:
        out = out.drop(columns="dataset")
    return out.reset_index(drop=True)


def _fmt_fooled(f: Optional[Dict[str, float]]) -> str:
    if not f or f.get("rate") is None:
        return "—"
    s = f"{100 * f['rate']:.1f}%"
    if f.get("se") is not None:
        s += f" ± {100 * f['se']:.1f} SE"
    if f.get("n") is not None:
        s += f" (n={int(f['n'])})"
    return s


def leaderboard_frame(results_dir: PathLike, dataset: Optional[str] = None) -> pd.DataFrame:
    """The display table the app shows (strings), for one dataset or all of them.

    Args:
        results_dir: the results folder (``results/``).
        dataset: a dataset name; None: every dataset (then a ``dataset`` column is kept).

    Returns:
        Columns ``[dataset,] model, type, <metric ↑/↓>..., [fooled ↑]``; one row per
        model per dataset, best ``auc_rebal`` first. Empty (with ``model`` and ``type``
        columns) when there are no results.
    """
    long = load_results(results_dir, dataset)
    if long.empty:
        cols = ["model", "type"] if dataset else ["dataset", "model", "type"]
        return pd.DataFrame(columns=cols)
    return display_frame(long, load_fooled(results_dir), with_dataset=dataset is None)


def numeric_frame(long: pd.DataFrame, fooled: Optional[Dict[str, Dict[str, float]]] = None) -> pd.DataFrame:
    """:func:`wide_frame` plus ``fooled``, ``fooled_se``, ``fooled_n`` when the study has run (the CSV)."""
    wide = wide_frame(long)
    if fooled:
        for key, col in (("rate", "fooled"), ("se", "fooled_se"), ("n", "fooled_n")):
            wide[col] = [fooled.get(m, {}).get(key, math.nan) for m in wide["model"]]
    return wide


# -- writing ----------------------------------------------------------------------
def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub pipe table (no extra dependency)."""
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def _short(reason: str, limit: int = 160) -> str:
    """First line of a reason, at most ``limit`` characters (the JSONs keep the full text)."""
    line = str(reason).splitlines()[0] if reason else ""
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _notes(long: pd.DataFrame, skipped: Dict[str, str]) -> List[str]:
    notes = [f"{UP} higher is better, {DOWN} lower is better; cells are value ± half-width of the "
             "bootstrap 95% interval over images (exact bounds in the CSV); — = missing."]
    miss = long[long["missing"].notna()].drop_duplicates(["metric", "missing"])
    for r in miss.itertuples(index=False):
        notes.append(f"missing `{r.metric}`: {_short(r.missing)}")
    for model, reason in sorted(skipped.items()):
        notes.append(f"skipped model `{model}`: {_short(reason)}")
    return notes


def write_tables(long: pd.DataFrame, out_dir: PathLike, stem: str = "leaderboard",
                 fooled: Optional[Dict[str, Dict[str, float]]] = None,
                 skipped: Optional[Dict[str, str]] = None, title: str = "ColorBench leaderboard",
                 with_dataset: Optional[bool] = None) -> List[Path]:
    """Write ``<stem>.md``, ``<stem>.csv`` and ``<stem>.html`` into ``out_dir``; returns the paths.

    ``with_dataset``: keep the dataset column in the markdown/HTML (default: only
    when there are several datasets; the CSV always has it).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if with_dataset is None:
        with_dataset = long["dataset"].nunique() > 1
    disp = display_frame(long, fooled, with_dataset=with_dataset)
    notes = _notes(long, skipped or {})
    datasets = ", ".join(sorted(long["dataset"].unique()))
    n = sorted({int(x) for x in long["n_images"].dropna()})
    md = [f"# {title}", "", f"Dataset: {datasets} ({', '.join(map(str, n))} images).", "", to_markdown(disp)]
    md += [f"- {x}" for x in notes]
    paths = [out / f"{stem}.md", out / f"{stem}.csv", out / f"{stem}.html"]
    atomic_write_text(paths[0], "\n".join(md) + "\n")
    atomic_write_text(paths[1], numeric_frame(long, fooled).to_csv(index=False, float_format="%.6g"))
    body = disp.to_html(index=False, escape=True, border=0, classes="leaderboard")
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            "<style>table.leaderboard{border-collapse:collapse;font-family:sans-serif;font-size:14px}"
            "table.leaderboard td,table.leaderboard th{padding:4px 8px;border-bottom:1px solid #ddd;"
            "text-align:right}table.leaderboard td:nth-child(-n+2){text-align:left}</style></head><body>\n"
            f"<h1>{html.escape(title)}</h1>\n<p>Dataset: {html.escape(datasets)}</p>\n{body}\n<ul>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in notes) + "</ul>\n</body></html>\n")
    atomic_write_text(paths[2], page)
    return paths


__all__ = ["load_documents", "load_results", "load_skipped", "load_fooled", "documents_frame", "wide_frame",
           "display_frame", "numeric_frame", "leaderboard_frame", "write_tables", "to_markdown", "fmt_cell",
           "fmt_number", "METRIC_ORDER"]
