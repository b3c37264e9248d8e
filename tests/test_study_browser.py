"""A participant in headless Chromium plays the practice pairs of the Turing test.

Drives Debian's ``/usr/bin/chromium`` over the DevTools protocol on a pipe
(``--remote-debugging-pipe``: no extra package, no port). Checks, for each pair,
that both images become visible, are hidden again after the exposure time (DOM
state, computed style, timing in the page's clock, and the pixels of a
screenshot: photo while shown, the flat grey frame once hidden), that practice
feedback appears and matches the store, then plays the test pairs (no feedback)
to the end screen, whose score is the store's, and that the clicks are the stored answers.

Screenshots go to ``$COLORBENCH_SCREENSHOTS`` (default: the test's tmp folder).
In CI (``CI=true``) a missing browser fails the test instead of skipping it.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import itertools
import json
import os
import queue
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
EXPOSURE_MS = 1000
N_PRACTICE = 3
N_TEST = 4
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars", "--window-size=1280,1600"]


def chromium_path():
    for name in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if name and os.path.exists(name):
            return name
    return None


class CDP:
    """A minimal DevTools-protocol client over ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, user_data_dir: str) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen([binary, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
                                      "about:blank"], preexec_fn=wire, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._ids = itertools.count(1)
        self._waiting = {}
        self._lock = threading.Lock()
        self.events = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.session = None

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._r, 1 << 20)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        q = self._waiting.pop(msg["id"], None)
                    if q is not None:
                        q.put(msg)
                else:
                    self.events.put(msg)

    def send(self, method: str, timeout: float = 30.0, session: bool = True, **params):
        i = next(self._ids)
        msg = {"id": i, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        q = queue.Queue()
        with self._lock:
            self._waiting[i] = q
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        try:
            reply = q.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply to {method} within {timeout} s") from None
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def open_page(self, width: int = 1280, height: int = 1600) -> None:
        target = self.send("Target.createTarget", session=False, url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", session=False, targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    def eval(self, expression: str, timeout: float = 30.0):
        r = self.send("Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails'].get('text')} in {expression[:80]}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.05):
        end = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for: {expression}")
            time.sleep(interval)

    def screenshot(self, path: Path) -> np.ndarray:
        from PIL import Image

        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def browser():
    binary = chromium_path()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Chromium is required in CI (apt-get install chromium) but was not found")
        pytest.skip("no Chromium on this machine")
    with tempfile.TemporaryDirectory(prefix="cb-chromium-") as profile:
        cdp = CDP(binary, profile)
        try:
            cdp.open_page()
            yield cdp
        finally:
            cdp.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    name = "colorbench_scripts_load_study"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "load_study.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look their module up while the file executes
        spec.loader.exec_module(mod)
    load_study = sys.modules[name]
    tmp = tmp_path_factory.mktemp("study_browser")
    cfg = load_study.write_config(tmp / "study.json", name="browser", n_images=4, image_size=256,
                                  n_practice=N_PRACTICE, n_test=N_TEST, exposure_ms=EXPOSURE_MS)
    with load_study.launch_app(tmp / "data", cfg) as proc:
        yield proc


def _rects(cdp: CDP):
    return cdp.eval("""Array.from(document.querySelectorAll('#cb-turing-stage .cb-pair img')).map(im => {
        const r = im.getBoundingClientRect();
        return [Math.round(r.left), Math.round(r.top), Math.round(r.width), Math.round(r.height)]; })""")


def _crop(shot: np.ndarray, rect) -> np.ndarray:
    x, y, w, h = rect
    return shot[y + 2:y + h - 2, x + 2:x + w - 2].astype(float)


def test_participant_plays_practice_pairs_and_images_hide_after_exposure(browser, app, tmp_path):
    shots = Path(os.environ.get("COLORBENCH_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    cdp = browser
    cdp.send("Page.navigate", url=app.url)
    cdp.wait_for("document.readyState === 'complete' && !!document.querySelector('button[role=tab]')", 90)
    cdp.wait_for("""(() => { const t = Array.from(document.querySelectorAll('button[role=tab]'))
        .find(b => b.textContent.includes('Turing')); if (t) t.click(); return !!t; })()""", 30)
    try:
        cdp.wait_for("!!document.querySelector('#cb-turing-consent input[type=checkbox]') && "
                     "!!document.querySelector('#cb-turing-start')", 60)
    except TimeoutError:
        cdp.screenshot(shots / "turing_not_found.png")
        raise
    cdp.screenshot(shots / "turing_intro.png")
    assert "salted one-way hash" in cdp.eval("document.querySelector('#cb-turing').textContent")  # consent text
    cdp.wait_for("""(() => { const c = document.querySelector('#cb-turing-consent input[type=checkbox]');
        if (!c.checked) c.click(); return c.checked; })()""", 30)
    cdp.eval("document.querySelector('#cb-turing-start').click()")

    clicked = []
    feedback = {}
    last_trial = None
    for k in range(N_PRACTICE):
        trial = cdp.wait_for(f"""(() => {{ const p = document.querySelector('#cb-turing-stage .cb-pair');
            return p && p.dataset.trial !== {json.dumps(last_trial)} && p.dataset.state === 'shown'
                   ? p.dataset.trial : null; }})()""", 90, interval=0.02)
        cdp.eval("document.querySelector('#cb-turing-stage').scrollIntoView({block: 'center'})")
        rects = _rects(cdp)
        shown = cdp.screenshot(shots / f"turing_pair{k + 1}_shown.png")
        vis = cdp.eval("Array.from(document.querySelectorAll('#cb-turing-stage img'))"
                       ".map(im => getComputedStyle(im).visibility)")
        hidden_now = cdp.eval("document.querySelector('#cb-turing-stage .cb-pair').dataset.state")
        if hidden_now == "shown":  # the screenshot was taken while the pair was still up
            assert vis == ["visible", "visible"]
            assert len(rects) == 2 and all(r[2] == 256 and r[3] == 256 for r in rects)
            for r in rects:  # a photo: varied pixels, not the flat grey frame
                assert _crop(shown, r).std() > 15, "the image is not visible in the screenshot"
        cdp.wait_for("document.querySelector('#cb-turing-stage .cb-pair').dataset.state === 'hidden'",
                     EXPOSURE_MS / 1000 + 10, interval=0.02)
        timing = cdp.eval("""(() => { const p = document.querySelector('#cb-turing-stage .cb-pair');
            return [parseFloat(p.dataset.shownAt), parseFloat(p.dataset.hiddenAt)]; })()""")
        shown_for = timing[1] - timing[0]
        assert EXPOSURE_MS - 5 <= shown_for <= EXPOSURE_MS + 400, f"shown for {shown_for:.0f} ms"
        assert cdp.eval("Array.from(document.querySelectorAll('#cb-turing-stage img'))"
                        ".map(im => getComputedStyle(im).visibility)") == ["hidden", "hidden"]
        hidden = cdp.screenshot(shots / f"turing_pair{k + 1}_hidden.png")
        for r in _rects(cdp):  # hidden: only the grey frame (#7f7f7f) is left where the image was
            region = _crop(hidden, r)
            assert region.std() < 2.0 and abs(region.mean() - 127) < 3, "the image is still visible"
        side = "left" if k % 2 == 0 else "right"
        cdp.eval(f"document.querySelector('#cb-turing-{side}').click()")
        clicked.append((trial, side))
        # the answer's reply brings the next pair and, with it, the feedback on this one
        told = cdp.wait_for(f"""(() => {{ const p = document.querySelector('#cb-turing-stage .cb-pair');
            const s = document.querySelector('#cb-turing-status');
            return p && p.dataset.trial !== {json.dumps(trial)} && s && /Correct:|Wrong:/.test(s.textContent)
                   ? s.textContent : null; }})()""", 60)
        feedback[trial] = "Correct:" in told
        if k == 0:
            cdp.screenshot(shots / "turing_feedback.png")
        last_trial = trial

    status = cdp.wait_for("""(() => { const s = document.querySelector('#cb-turing-status');
        return s && /Pair 1 of/.test(s.textContent) ? s.textContent : null; })()""", 60)
    assert "Practice is over" in status
    # the test pairs (no feedback), answered as soon as they are up, then the end screen
    for k in range(N_TEST):
        trial = cdp.wait_for(f"""(() => {{ const p = document.querySelector('#cb-turing-stage .cb-pair');
            return p && p.dataset.trial !== {json.dumps(last_trial)} ? p.dataset.trial : null; }})()""", 60)
        status = cdp.eval("document.querySelector('#cb-turing-status').textContent")
        if k > 0:  # the first test pair still shows the last practice pair's feedback
            assert "Correct:" not in status and "Wrong:" not in status  # no feedback on test pairs
        cdp.eval("document.querySelector('#cb-turing-right').click()")
        clicked.append((trial, "right"))
        last_trial = trial
    end = cdp.wait_for("""(() => { const e = document.querySelector('#cb-turing-end');
        return e && e.offsetParent !== null && /spotted/.test(e.textContent) ? e.textContent : null; })()""", 60)
    cdp.screenshot(shots / "turing_end.png")
    assert cdp.eval("document.querySelectorAll('#cb-turing-stage img').length") == 0

    con = sqlite3.connect(f"file:{app.db}?mode=ro", uri=True)
    n_right = con.execute("SELECT SUM(j.correct) FROM judgments j JOIN trials t ON t.id = j.trial_id "
                          "WHERE t.phase = 'test'").fetchone()[0]
    assert f"in {n_right} of {N_TEST} test pairs" in " ".join(end.split())
    stored = dict(con.execute("SELECT trial_id, choice FROM judgments").fetchall())
    assert stored == dict(clicked)
    correct = dict(con.execute("SELECT j.trial_id, j.correct FROM judgments j JOIN trials t ON t.id = j.trial_id "
                               "WHERE t.phase = 'practice'").fetchall())
    assert feedback == {t: bool(c) for t, c in correct.items()}  # what the page said is what was stored
    ua = con.execute("SELECT user_agent FROM participants").fetchone()[0]
    assert "Chrome" in ua
