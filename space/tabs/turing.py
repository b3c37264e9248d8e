"""Turing-test tab: a participant spots the fake of real-vs-colorized pairs.

Everything that matters is decided on the server (``colorbench.study.session``):
the page only shows what it is sent and reports which side was clicked. A pair
arrives as two PNG ``data:`` URLs under a random trial id; a script in the stage
component shows both images once both have loaded, for the study's exposure time,
then hides them. The server records when it served the trial.

Public API endpoints (for ``gradio_client``):

- ``/study_start(consent: bool) -> {"participant_id", "n_practice", "n_test", "trial"}``
- ``/study_answer(participant_id, trial_id, choice: "left"|"right") -> {"accepted",
  "phase", "correct" (practice only), "next", "done", "score"}``

A ``trial`` is ``{"trial_id", "phase", "number", "of", "exposure_ms", "left", "right"}``.
"""

from __future__ import annotations

import dataclasses
import html
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import gradio as gr

from ..context import AppContext

log = logging.getLogger(__name__)

CONCURRENCY = 8  # study calls running at once (each is a few ms of SQLite work)

STAGE_CSS = """
.cb-pair { display: flex; gap: 16px; justify-content: center; flex-wrap: wrap; }
.cb-pair figure { margin: 0; text-align: center; }
.cb-pair .cb-frame { background: #7f7f7f; display: inline-block; line-height: 0; }
.cb-pair img { visibility: hidden; display: block; }
.cb-pair[data-state="shown"] img { visibility: visible; }
.cb-pair figcaption { margin-top: 4px; font-weight: 600; }
"""

# Runs once when the stage mounts, then on every new pair: wait until both images
# have decoded, show them for data-exposure ms, hide them. The images keep their
# size (the grey frame stays) so nothing moves under the participant's cursor.
STAGE_JS = """
const arm = () => {
  const pair = element.querySelector('.cb-pair');
  if (!pair || pair.dataset.armed === pair.dataset.trial) return;
  pair.dataset.armed = pair.dataset.trial;
  const trial = pair.dataset.trial;
  const imgs = Array.from(pair.querySelectorAll('img'));
  const ms = parseInt(pair.dataset.exposure || '1000', 10);
  const loaded = imgs.map(im => (im.complete && im.naturalWidth) ? Promise.resolve()
      : (im.decode ? im.decode().catch(() => {}) : new Promise(r => { im.onload = r; im.onerror = r; })));
  Promise.all(loaded).then(() => {
    if (pair.dataset.trial !== trial || !pair.isConnected) return;
    pair.dataset.state = 'shown';
    pair.dataset.shownAt = String(performance.now());
    setTimeout(() => {
      if (pair.dataset.trial !== trial) return;
      pair.dataset.state = 'hidden';
      pair.dataset.hiddenAt = String(performance.now());
    }, ms);
  });
};
arm();
if (typeof watch === 'function') watch('value', () => setTimeout(arm, 0));
new MutationObserver(() => arm()).observe(element, {childList: true, subtree: true});
"""


def _config(ctx: AppContext):
    """The study config (``COLORBENCH_STUDY_CONFIG`` or ``studies/default.json``) with its models
    restricted to those that can run here, when the app knows; and ``{model: reason}`` of those left out."""
    from colorbench.study.config import REPO_DEFAULT_CONFIG, load_config

    config = load_config(os.environ.get("COLORBENCH_STUDY_CONFIG") or REPO_DEFAULT_CONFIG)
    catalog = getattr(ctx, "catalog", None)
    if catalog is None:
        return config, {}
    left_out: Dict[str, str] = {}
    try:
        for m in config.models:
            st = catalog.status(m)
            if not st.available:
                left_out[m] = st.reason
    except Exception:  # the catalog is advisory: the study build checks the models itself
        log.exception("model availability check failed; the study build will decide")
        return config, {}
    usable = tuple(m for m in config.models if m not in left_out)
    if left_out:
        log.info("Turing test: models unavailable here, left out: %s", ", ".join(left_out))
    return (dataclasses.replace(config, models=usable) if usable else config), left_out


def make_service(ctx: AppContext):
    """The study service of this app (database ``ctx.study_db``, stimuli under the data dir), and
    ``{model: reason}`` when none of the study's models can run here (else empty)."""
    from colorbench.study.cli import stimuli_root
    from colorbench.study.session import StudyService
    from colorbench.study.sync import sync_from_env

    config, left_out = _config(ctx)
    sync = sync_from_env(Path(ctx.data_dir) / "study_sync", config.name)
    service = StudyService.from_paths(config, stimuli_root(Path(ctx.data_dir)), ctx.study_db, sync=sync)
    return service, (left_out if set(left_out) >= set(config.models) else {})


def stage_html(trial: Optional[Dict[str, Any]], size: int) -> str:
    """The pair as HTML: two data-URL images, nothing naming them."""
    if not trial:
        return ""
    imgs = []
    for side in ("left", "right"):
        imgs.append(f'<figure><span class="cb-frame"><img src="{html.escape(trial[side], quote=True)}" '
                    f'width="{size}" height="{size}" alt="{side} image" draggable="false"></span>'
                    f'<figcaption>{side.capitalize()}</figcaption></figure>')
    return (f'<div class="cb-pair" data-trial="{html.escape(trial["trial_id"])}" '
            f'data-exposure="{int(trial["exposure_ms"])}" data-state="loading">{"".join(imgs)}</div>')


def _progress(trial: Dict[str, Any]) -> str:
    if trial["phase"] == "practice":
        return f"**Practice pair {trial['number']} of {trial['of']}** — you will be told if you were right."
    return f"**Pair {trial['number']} of {trial['of']}** — no feedback from now on."


def _behind_proxy() -> bool:
    """Whether the app runs behind a reverse proxy whose X-Forwarded-For can be trusted
    (``COLORBENCH_TRUST_PROXY=1``, or on a Hugging Face Space, where ``SPACE_ID`` is set)."""
    return os.environ.get("COLORBENCH_TRUST_PROXY") == "1" or bool(os.environ.get("SPACE_ID"))


def _request_info(request: Optional[gr.Request]) -> Tuple[Optional[str], str]:
    """(client IP, user agent). Behind a trusted proxy the IP is the last X-Forwarded-For entry:
    the one the proxy itself appended (earlier entries are whatever the client sent)."""
    if request is None:
        return None, ""
    host = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None) or {}
    forwarded = str(headers.get("x-forwarded-for", "") or "")
    if forwarded and _behind_proxy():
        host = forwarded.split(",")[-1].strip() or host
    return host, str(headers.get("user-agent", ""))


class Handlers:
    """The tab's callbacks, bound to one :class:`StudyService`."""

    def __init__(self, service) -> None:
        self.service = service

    # -- API (JSON in, JSON out) ------------------------------------------------------
    def study_start(self, consent: bool, request: gr.Request) -> dict:
        """Start a session. `consent` must be true. Returns the participant id and the first pair."""
        from colorbench.study.store import Refused

        ip, ua = _request_info(request)
        try:
            return self.service.start(consent, ip, ua)
        except Refused as e:
            raise gr.Error(str(e), title="Not started", print_exception=False) from None
        except RuntimeError as e:  # the study cannot be built here (no model available)
            log.error("Turing test unavailable: %s", e)
            raise gr.Error("The study is not available on this server right now.", print_exception=False) from None

    def study_answer(self, participant_id: str, trial_id: str, choice: str) -> dict:
        """Answer the current pair: `choice` is the side you think is fake ("left" or "right")."""
        from colorbench.study.store import Refused

        try:
            return self.service.answer(participant_id, trial_id, choice)
        except Refused as e:
            raise gr.Error(str(e), title="Answer refused", print_exception=False) from None

    # -- page -----------------------------------------------------------------------
    def ui_start(self, consent: bool, request: gr.Request):
        res = self.study_start(bool(consent), request)
        trial = res["trial"]
        size = self.service.config.image_size
        return (res["participant_id"], trial["trial_id"], gr.update(visible=False), stage_html(trial, size),
                _progress(trial), gr.update(visible=True), gr.update(value="", visible=False))

    def ui_answer(self, side: str, participant_id: str, trial_id: str):
        if not participant_id:
            raise gr.Error("Start the test first.", print_exception=False)
        res = self.study_answer(participant_id, trial_id, side)
        size = self.service.config.image_size
        feedback = ""
        if res["correct"] is not None:
            feedback = ("**Correct:** that one was the colorization.  \n" if res["correct"]
                        else "**Wrong:** that one was the real photo.  \n")
        if res["done"]:
            s = res["score"]
            pct = 100.0 * s["correct"] / s["total"] if s["total"] else 0.0
            end = (f"## Thank you!\nYou spotted the fake in **{s['correct']} of {s['total']}** test pairs "
                   f"({pct:.0f}%). Chance is 50%; the better the colorizations, the lower this score.")
            return ("", "", "", feedback, gr.update(visible=False), gr.update(value=end, visible=True))
        nxt = res["next"]
        if nxt["phase"] == "test" and nxt["number"] == 1:
            feedback += "Practice is over: the real test starts now.  \n"
        return (participant_id, nxt["trial_id"], stage_html(nxt, size), feedback + _progress(nxt),
                gr.update(visible=True), gr.update(visible=False))


INTRO = """### Can you spot the colorization?
Each round shows two versions of the same photo side by side for **{seconds:g} second{plural}**: one is the
real colour photo, the other was coloured by a computer from the black-and-white version. Click the side
you think is **fake**. Take as long as you like to answer. First {n_practice} practice pairs with feedback,
then {n_test} pairs without.

{consent}
"""


def build(ctx: AppContext) -> Handlers:
    """Add the Turing test to the enclosing ``gr.Blocks`` / ``gr.Tab``; returns its handlers."""
    service, unavailable = make_service(ctx)
    h = Handlers(service)
    c = service.config
    with gr.Column(elem_id="cb-turing"):
        with gr.Column(visible=True) as intro_box:
            gr.Markdown(INTRO.format(seconds=c.exposure_ms / 1000, plural="" if c.exposure_ms == 1000 else "s",
                                     n_practice=c.n_practice, n_test=c.n_test, consent=c.consent_text))
            runnable = not unavailable
            if not runnable:
                gr.Markdown("**The study cannot run on this server:** none of its models is available here ("
                            + "; ".join(f"{m}: {why}" for m, why in unavailable.items()) + ").",
                            elem_id="cb-turing-unavailable")
            consent = gr.Checkbox(label="I have read this and agree to take part", value=False,
                                  elem_id="cb-turing-consent", interactive=runnable)
            start = gr.Button("Start", variant="primary", elem_id="cb-turing-start", interactive=runnable)
        status = gr.Markdown("", elem_id="cb-turing-status")
        stage = gr.HTML("", html_template="${value}", css_template=STAGE_CSS, js_on_load=STAGE_JS,
                        elem_id="cb-turing-stage", min_height=40)
        with gr.Row(visible=False) as buttons:
            left = gr.Button("⬅ Left is fake", elem_id="cb-turing-left")
            right = gr.Button("Right is fake ➡", elem_id="cb-turing-right")
        end = gr.Markdown("", visible=False, elem_id="cb-turing-end")
    pid = gr.State("")
    tid = gr.State("")

    common = dict(concurrency_limit=CONCURRENCY, concurrency_id="study", api_visibility="private",
                  show_progress="hidden")
    start.click(h.ui_start, inputs=[consent], outputs=[pid, tid, intro_box, stage, status, buttons, end], **common)
    outs = [pid, tid, stage, status, buttons, end]
    left.click(lambda p, t: h.ui_answer("left", p, t), inputs=[pid, tid], outputs=outs, **common)
    right.click(lambda p, t: h.ui_answer("right", p, t), inputs=[pid, tid], outputs=outs, **common)

    gr.api(h.study_start, api_name="study_start", concurrency_limit=CONCURRENCY, concurrency_id="study")
    gr.api(h.study_answer, api_name="study_answer", concurrency_limit=CONCURRENCY, concurrency_id="study")
    return h
