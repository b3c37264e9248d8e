"""Submit a model: upload form for the three submission kinds and the queue with statuses.

Everything is done by :mod:`colorbench.leaderboard.submissions`: this module only
lays out the form, passes its fields on and shows the answer. Submissions are
validated at once (nothing runs before that) and queued; ``colorbench
leaderboard worker`` evaluates the queue and the results appear in the table
above, marked as submitted.

With ``COLORBENCH_SUBMIT_WORKER=1`` the app also runs that worker itself in a
background thread (for a Space without a separate job), polling every
``COLORBENCH_SUBMIT_POLL`` seconds (default 30); ``COLORBENCH_SUBMIT_DATASETS`` and
``COLORBENCH_SUBMIT_METRICS`` (comma-separated) choose what checkpoints are
evaluated on (default: ``builtin``, every metric); evaluations left RUNNING for
``COLORBENCH_SUBMIT_STALE`` seconds (default 3600) are retried.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import gradio as gr
import pandas as pd

from ..context import AppContext

log = logging.getLogger(__name__)

KINDS = {
    "Checkpoint (.safetensors)": "checkpoint",
    "Hub model id": "hub",
    "Predictions (.zip)": "predictions",
}
QUEUE_COLUMNS = ["id", "status", "kind", "model", "architecture / dataset", "submitter", "submitted (UTC)", "reason"]


def _store_factory(ctx: AppContext) -> Callable[[], Any]:
    """One submissions store per app, opened on first use (not at build time)."""
    box: Dict[str, Any] = {}

    def get():
        if "store" not in box:
            from colorbench.leaderboard.submissions import SubmissionStore

            box["store"] = SubmissionStore(Path(ctx.data_dir))
        return box["store"]

    return get


def queue_frame(store) -> pd.DataFrame:
    """The queue, newest first, as shown in the page (no file paths)."""
    rows = []
    for s in store.queue.list(limit=200):
        p = s.public()
        rows.append([p["id"], p["status"], p["kind"], p["model"], p["arch"] or p["dataset"], p["submitter"],
                     p["submitted"].replace("Z", ""), p["reason"]])
    return pd.DataFrame(rows, columns=QUEUE_COLUMNS)


def submit(store, kind_label: str, file_path: Optional[str], hub_id: str, arch: Optional[str],
           dataset: Optional[str], card: str, submitter: str) -> str:
    """Validate and queue one submission; returns a sentence for the page (never raises for a refusal)."""
    from colorbench.leaderboard.submissions import (
        SubmissionRefused,
        submit_checkpoint,
        submit_hub,
        submit_predictions,
    )

    kind = KINDS.get(kind_label, kind_label)
    try:
        if kind in ("checkpoint", "predictions") and not file_path:
            raise SubmissionRefused("Choose a file to upload.")
        if kind in ("checkpoint", "hub") and not arch:
            raise SubmissionRefused("Choose the architecture the weights are for.")
        if kind == "checkpoint":
            if not str(file_path).lower().endswith(".safetensors"):
                raise SubmissionRefused("Checkpoints must be .safetensors files (pickle-based .pt/.pth/.bin are refused).")
            sub = submit_checkpoint(store, Path(file_path), arch, card, submitter)
        elif kind == "hub":
            sub = submit_hub(store, (hub_id or "").strip(), arch, card, submitter)
        elif kind == "predictions":
            if not dataset:
                raise SubmissionRefused("Choose the dataset the predictions are for.")
            sub = submit_predictions(store, Path(file_path), dataset, card, submitter)
        else:
            raise SubmissionRefused(f"Unknown submission kind {kind_label!r}.")
    except SubmissionRefused as e:
        return f"**Refused:** {e}"
    except Exception as e:  # a bug must not look like a refusal, nor crash the page
        log.exception("submission failed")
        return f"**Error:** the submission could not be processed ({type(e).__name__}); it was not queued."
    return (f"**Queued** as submission #{sub.id} — `{sub.model_name}` ({sub.kind}), content hash "
            f"`{sub.content_hash[:12]}`. It will be evaluated by the leaderboard worker; its status shows below.")


def _env_list(name: str) -> Optional[Tuple[str, ...]]:
    items = tuple(x.strip() for x in os.environ.get(name, "").split(",") if x.strip())
    return items or None


def start_worker(ctx: AppContext, store, interval: float = 30.0,
                 stop: Optional[threading.Event] = None) -> threading.Thread:
    """Evaluate the queue in a daemon thread: drain it, sleep ``interval`` seconds, repeat until ``stop`` is set.

    Results go to ``ctx.results_dir``; a crash of one round is logged and the next round goes on.
    """
    from colorbench.leaderboard.submissions import WorkerConfig, run_worker

    cfg = WorkerConfig(results_dir=Path(ctx.results_dir), datasets=_env_list("COLORBENCH_SUBMIT_DATASETS") or
                       ("builtin",), metrics=_env_list("COLORBENCH_SUBMIT_METRICS"))
    stop = stop or threading.Event()

    # a worker that died mid-evaluation (e.g. the app restarted) left RUNNING rows: retried once this old
    stale = float(os.environ.get("COLORBENCH_SUBMIT_STALE", 3600))

    def loop() -> None:
        while not stop.is_set():
            try:
                done = run_worker(store, cfg, requeue_after_s=stale)
                for s in done:
                    log.info("submission #%d %s: %s %s", s.id, s.model_name, s.status, s.reason or "")
            except Exception:
                log.exception("submission worker round failed")
            stop.wait(interval)

    t = threading.Thread(target=loop, name="submission-worker", daemon=True)
    t.start()
    return t


def _architectures(ctx: AppContext) -> List[str]:
    """Registered architectures that have weights (baselines have none)."""
    from colorbench.models import model_info

    names = []
    for name in ctx.catalog.names:
        try:
            if model_info(name).get("kind") != "baseline":
                names.append(name)
        except KeyError:
            continue
    return names


def _datasets() -> List[str]:
    from colorbench.data import list_datasets

    return [d for d in list_datasets() if not d.startswith("folder:")]


def _intro(ctx: AppContext) -> str:
    from colorbench.leaderboard.submissions import Limits

    lim = Limits()
    return (
        "Submit **(a)** a `.safetensors` checkpoint for a registered architecture, **(b)** a Hugging Face Hub "
        "model id whose repo holds one `.safetensors` file, or **(c)** a `.zip` of predictions: one PNG per item "
        "of a dataset's item list, named `<item id>.png`, 8-bit RGB, at the benchmark's evaluation size.\n\n"
        "Pickle-based checkpoints (`.pt`, `.pth`, `.bin`) are refused without being opened. Every submission "
        "needs a model card (front matter with `model_name` and `license`, then a description) and a "
        f"submitter name; each submitter may send {lim.rate_limit} per {lim.rate_window_s / 3600:g} h. "
        f"Uploads here are limited to {ctx.max_upload_mb} MB — larger checkpoints: use a hub id or "
        "`colorbench leaderboard submit`. Results appear in the table above, marked *submitted*."
    )


def build(ctx: AppContext) -> None:
    """Lay out the submission form and the queue inside the current block."""
    from colorbench.leaderboard.submit_validate import CARD_TEMPLATE

    store = _store_factory(ctx)
    if os.environ.get("COLORBENCH_SUBMIT_WORKER") == "1":
        start_worker(ctx, store(), interval=float(os.environ.get("COLORBENCH_SUBMIT_POLL", 30)))
    gr.Markdown(_intro(ctx), elem_classes=["cb-note"])
    with gr.Row():
        with gr.Column(scale=1):
            kind = gr.Radio(list(KINDS), value=next(iter(KINDS)), label="What are you submitting?")
            upload = gr.File(label="File (.safetensors or .zip)", file_types=[".safetensors", ".zip"],
                             type="filepath", file_count="single")
            hub_id = gr.Textbox(label="Hub model id (owner/name)", placeholder="owner/name", visible=False)
            archs = _architectures(ctx)
            arch = gr.Dropdown(archs, value=archs[0] if archs else None, label="Architecture")
            datasets = _datasets()
            dataset = gr.Dropdown(datasets, value=datasets[0] if datasets else None, label="Dataset",
                                  visible=False)
            submitter = gr.Textbox(label="Submitter name", max_lines=1)
        with gr.Column(scale=1):
            card = gr.Textbox(CARD_TEMPLATE, label="Model card", lines=12, max_lines=30)
    send = gr.Button("Submit", variant="primary")
    status = gr.Markdown(elem_id="submit-status")
    with gr.Row():
        gr.Markdown("### Queue")
        refresh = gr.Button("Refresh", size="sm", scale=0)
    queue = gr.Dataframe(value=lambda: queue_frame(store()), interactive=False, wrap=True,  # refreshed on page load
                         label="Submissions (newest first)")

    def on_kind(label: str):
        k = KINDS.get(label, label)
        return (gr.update(visible=k != "hub"), gr.update(visible=k == "hub"),
                gr.update(visible=k != "predictions"), gr.update(visible=k == "predictions"))

    def on_submit(label, file_path, hub, arch_name, ds, card_text, who) -> Tuple[str, pd.DataFrame]:
        msg = submit(store(), label, file_path, hub, arch_name, ds, card_text, who)
        return msg, queue_frame(store())

    def on_refresh() -> pd.DataFrame:
        return queue_frame(store())

    kind.change(on_kind, kind, [upload, hub_id, arch, dataset], queue=False)
    send.click(on_submit, [kind, upload, hub_id, arch, dataset, card, submitter], [status, queue],
               api_name="submit", concurrency_limit=1)
    refresh.click(on_refresh, None, queue, api_name="submission_queue", queue=False)
