"""Assemble the ColorBench app from its tabs; nothing else happens here.

Each tab is a module under ``space/tabs/`` with one ``build(ctx)`` function that
lays out its components inside the current ``gr.Tab``. Tabs written by other
parts of the project (the Turing test, submissions) are added when their module
exists; a missing module is skipped with a log line.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from typing import Any, Dict, List, Optional

import gradio as gr

from .context import AppContext

log = logging.getLogger(__name__)

CSS = """
#colorize-status p { margin: 0.2em 0; }
.cb-note { color: var(--body-text-color-subdued); font-size: 0.9em; }
footer { display: none !important; }
"""

INTRO = (
    "# ColorBench\n"
    "Automatic image colorization: try the models, compare them with a human *Turing test*, "
    "and see how they score on the benchmark."
)


def _optional_tab(module: str, ctx: AppContext) -> bool:
    """Build ``space.tabs.<module>`` if it exists; False (and a log line) when it does not.

    A module that exists but fails to build is reported in the tab and the log;
    with ``COLORBENCH_STRICT_TABS=1`` the error propagates instead.
    """
    name = f"space.tabs.{module}"
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name in (name, "space.tabs." + module):
            log.info("tab module %s is not present; tab skipped", name)
            return False
        raise
    try:
        mod.build(ctx)
    except Exception as e:
        if os.environ.get("COLORBENCH_STRICT_TABS") == "1":
            raise
        log.exception("tab %s failed to build", name)
        gr.Markdown(f"This part of the app failed to load ({type(e).__name__}); the error is in the server log.")
    return True


def _has_module(module: str) -> bool:
    return importlib.util.find_spec(f"space.tabs.{module}") is not None


def build_app(ctx: Optional[AppContext] = None) -> gr.Blocks:
    """The whole app as a ``gr.Blocks`` with its queue configured (not launched).

    Loads no model while building: models are created on first use and cached by the
    pipeline; models whose availability the cheap check cannot decide (ensembles)
    are built in a background thread after start.
    """
    from .tabs import about, colorize, leaderboard, video

    ctx = ctx or AppContext.from_env()
    on_load: List[Dict[str, Any]] = []
    with gr.Blocks(title="ColorBench", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        with gr.Tabs():
            with gr.Tab("Colorize", id="colorize"):
                on_load += colorize.build(ctx) or []
            with gr.Tab("Video", id="video"):
                on_load += video.build(ctx) or []
            if _has_module("turing"):
                with gr.Tab("Turing test", id="turing"):
                    _optional_tab("turing", ctx)
            else:
                log.info("tab module space.tabs.turing is not present; Turing test tab skipped")
            with gr.Tab("Leaderboard", id="leaderboard"):
                leaderboard.build(ctx)
                if _has_module("submit"):
                    with gr.Accordion("Submit a model", open=False):
                        _optional_tab("submit", ctx)
                else:
                    log.info("tab module space.tabs.submit is not present; submissions skipped")
            with gr.Tab("About", id="about"):
                about.build(ctx)
        for event in on_load:  # menus reflect models found unavailable after start
            demo.load(**event, api_visibility="private", show_progress="hidden", queue=False)
    ctx.catalog.verify_pending()  # background: builds models the cheap check cannot decide
    demo.queue(default_concurrency_limit=ctx.concurrency_limit, max_size=ctx.queue_max_size)
    return demo


def launch_kwargs(ctx: AppContext) -> Dict[str, Any]:
    """Arguments for ``Blocks.launch``: upload limit, served paths, theme and CSS."""
    return dict(
        max_file_size=f"{ctx.max_upload_mb}mb",
        allowed_paths=[str(ctx.outputs_dir), str(ctx.results_dir), str(ctx.examples_dir)],
        show_error=True,
        ssr_mode=False,
        theme=gr.themes.Soft(),
        css=CSS,
    )
