"""Leaderboard tab: the benchmark table, its plots, and who each model is.

The table comes from ``colorbench.leaderboard.leaderboard_frame`` (cells are
``value ± half-width of the 95% bootstrap interval``; a ``fooled`` column appears
once the human study has results); the plots are the PNGs the leaderboard build
writes under ``results/<dataset>/``. Nothing is computed here.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import gradio as gr
import pandas as pd

from ..context import AppContext

log = logging.getLogger(__name__)

ALL = "All datasets"
FIXED = ("dataset", "model", "type")
NO_RESULTS = ("**No benchmark results yet.** The results folder `{dir}` holds no results files. "
              "Run `colorbench bench` and then `colorbench leaderboard build` to fill it.")
_NUM = re.compile(r"^\s*(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?∞)")


def load_frame(results_dir: Path, dataset: Optional[str] = None) -> Tuple[pd.DataFrame, str]:
    """(table, problem): the display table, or an empty frame and a sentence saying why."""
    try:
        from colorbench.leaderboard import leaderboard_frame
    except ImportError as e:
        return pd.DataFrame(), f"The leaderboard module is not available in this build ({e})."
    try:
        df = leaderboard_frame(results_dir, dataset=dataset)
    except Exception as e:  # a broken results folder must not break the page
        log.exception("leaderboard_frame failed")
        return pd.DataFrame(), f"The results could not be read ({type(e).__name__}: {e})."
    if df is None or df.empty:
        return pd.DataFrame(), NO_RESULTS.format(dir=results_dir)
    return df, ""


def cell_number(s: object) -> float:
    """The leading number of a display cell (``"0.912 ± 0.010"`` -> 0.912; ``—`` -> NaN)."""
    if isinstance(s, (int, float)):
        return float(s)
    m = _NUM.match(str(s))
    if not m:
        return math.nan
    t = m.group(1)
    return math.copysign(math.inf, -1.0 if t.startswith("-") else 1.0) if "∞" in t else float(t)


def metric_columns(df: pd.DataFrame) -> List[str]:
    return [c for c in df.columns if c not in FIXED]


def sort_frame(df: pd.DataFrame, column: Optional[str]) -> pd.DataFrame:
    """Sort by a metric column, best first (↑ columns descending, ↓ ascending); missing last."""
    if not column or column not in df.columns or df.empty:
        return df
    if column in FIXED:
        return df.sort_values(column, kind="stable").reset_index(drop=True)
    descending = not column.rstrip().endswith("↓")
    keys = df[column].map(cell_number)
    keys = keys.where(keys.notna(), -math.inf if descending else math.inf)
    order = keys.sort_values(ascending=not descending, kind="stable").index
    return df.loc[order].reset_index(drop=True)


def filter_frame(df: pd.DataFrame, columns: Sequence[str], search: str, sort_by: Optional[str]) -> pd.DataFrame:
    """Keep the fixed columns plus ``columns``, rows whose model/type contain ``search``, sorted."""
    if df.empty:
        return df
    q = (search or "").strip().lower()
    if q:
        hay = df["model"].astype(str).str.lower() + " " + df["type"].astype(str).str.lower()
        df = df[hay.str.contains(q, regex=False)]
    df = sort_frame(df, sort_by)
    keep = [c for c in FIXED if c in df.columns] + [c for c in metric_columns(df) if c in set(columns or [])]
    return df[keep].reset_index(drop=True)


def datasets_in(df: pd.DataFrame) -> List[str]:
    return sorted(df["dataset"].astype(str).unique()) if "dataset" in df.columns and not df.empty else []


def plot_files(results_dir: Path, datasets: Sequence[str], order: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """(path, caption) of the curve plot, then the metric bar charts of each dataset in
    the table's column ``order`` (metric names; others alphabetically after)."""
    rank = {m: i for i, m in enumerate(order)}
    out: List[Tuple[str, str]] = []
    for ds in datasets:
        folder = Path(results_dir) / ds
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("auc_curves_*.png")):
            out.append((str(p), f"{ds}: cumulative ab-error curves"))
        bars = []
        for p in folder.glob("metric_*.png"):
            name = p.stem[len("metric_"):]
            name = name[: -len(ds) - 1] if name.endswith("_" + ds) else name
            bars.append((rank.get(name, len(rank)), name, str(p)))
        out.extend((p, f"{ds}: {name}") for _, name, p in sorted(bars))
    return out


def has_values(df: pd.DataFrame, column: str) -> bool:
    """True when some cell of a display column holds a number (not only ``—``)."""
    return bool(df[column].map(lambda v: not math.isnan(cell_number(v))).any())


def models_markdown(models: Sequence[str]) -> str:
    """Each model's description and paper, from the registry."""
    from colorbench.models import model_info

    lines = []
    for m in models:
        if m == "ground_truth":
            lines.append("- **ground_truth** — the original colour photos scored as predictions: the ceiling.")
            continue
        try:
            info = model_info(m)
        except Exception:
            lines.append(f"- **{m}** — not in this copy's model registry (a submitted model).")
            continue
        desc, paper = info.get("description", ""), info.get("paper", "")
        lines.append(f"- **{m}** ({info.get('kind', 'model')}) — {desc}" + (f" *{paper}*" if paper else ""))
    return "\n".join(lines)


class LeaderboardHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def refresh(self, dataset: Optional[str], columns: Optional[Sequence[str]], search: str, sort_by: Optional[str]):
        """-> (table, message, dataset dropdown, columns, sort dropdown, plots, models text)."""
        full, problem = load_frame(self.ctx.results_dir)
        if problem:  # say so plainly and hide the empty widgets
            empty = pd.DataFrame(columns=["model", "type"])
            return (gr.update(value=empty, visible=False), problem, gr.update(choices=[ALL], value=ALL),
                    gr.update(choices=[], value=[], visible=False), gr.update(choices=[], value=None),
                    gr.update(value=[], visible=False), "")
        datasets = datasets_in(full)
        ds = dataset if dataset in datasets else (datasets[0] if len(datasets) == 1 and dataset is None else ALL)
        df = full if ds == ALL else full[full["dataset"] == ds]
        if ds != ALL:
            df = df.drop(columns="dataset")
        mcols = metric_columns(full)
        shown = [c for c in mcols if has_values(df, c)]  # by default, hide metrics missing everywhere
        chosen = shown if columns is None else [c for c in columns if c in mcols]
        if columns and not chosen:  # columns of another dataset: show this one's
            chosen = shown
        sort_choices = ["model", *mcols]
        sort = sort_by if sort_by in sort_choices else None
        table = filter_frame(df, chosen, search, sort)
        n_models = table["model"].nunique() if not table.empty else 0
        msg = (f"{len(table)} row(s), {n_models} model(s)"
               + (f" on **{ds}**" if ds != ALL else f" over {len(datasets)} dataset(s)")
               + ". Cells: value ± half-width of the 95% bootstrap interval over images; "
               "↑ higher is better, ↓ lower is better.")
        if any(c.startswith("fooled") for c in mcols):
            msg += " *fooled*: share of Turing-test pairs where people took the colorization for the real photo, " \
                   "± its bootstrap standard error over participants."
        else:
            msg += " The human *fooled* rate appears once the Turing test has results."
        plots = plot_files(self.ctx.results_dir, datasets if ds == ALL else [ds],
                           order=[c.rsplit(" ", 1)[0] for c in mcols])
        return (gr.update(value=table, visible=True), msg, gr.update(choices=[ALL] + datasets, value=ds),
                gr.update(choices=mcols, value=chosen, visible=True), gr.update(choices=sort_choices, value=sort),
                gr.update(value=plots, visible=bool(plots)),
                models_markdown(list(dict.fromkeys(df["model"].astype(str)))))


def build(ctx: AppContext) -> None:
    """Lay out the Leaderboard tab inside the current ``gr.Tab``."""
    h = LeaderboardHandlers(ctx)
    first = h.refresh(None, None, "", None)
    with gr.Row():
        dataset = gr.Dropdown(label="Dataset", scale=1, elem_id="lb-dataset", **_upd(first[2]))
        search = gr.Textbox(label="Search models", placeholder="e.g. eccv16 or baseline", scale=1,
                            elem_id="lb-search")
        sort_by = gr.Dropdown(label="Sort by (best first)", scale=1, elem_id="lb-sort", **_upd(first[4]))
        refresh = gr.Button("Reload results", scale=0, size="sm")
    columns = gr.CheckboxGroup(label="Columns", elem_id="lb-columns", **_upd(first[3]))
    message = gr.Markdown(first[1], elem_id="lb-message")
    table = gr.Dataframe(interactive=False, wrap=True, elem_id="lb-table", max_height=600,
                         buttons=["copy", "fullscreen"], **_upd(first[0]))
    plots = gr.Gallery(label="Cumulative ab-error curves and metric charts (95% intervals)", columns=2,
                       format="png", object_fit="contain", elem_id="lb-plots", **_upd(first[5]))
    with gr.Accordion("Models", open=False):
        models_md = gr.Markdown(first[6], elem_id="lb-models")

    inputs = [dataset, columns, search, sort_by]
    outputs = [table, message, dataset, columns, sort_by, plots, models_md]
    for ev in (dataset.input, columns.input, sort_by.input, search.submit, refresh.click):
        ev(h.refresh, inputs=inputs, outputs=outputs, api_visibility="private", show_progress="hidden")


def _upd(u: dict) -> dict:
    """The ``choices``/``value``/``visible`` of a ``gr.update`` as constructor keyword arguments."""
    return {k: v for k, v in u.items() if k in ("choices", "value", "visible")}
