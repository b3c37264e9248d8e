"""The real app in a real headless Chromium (Debian's package, driven by Playwright).

The page loads, a photo is uploaded, Colorize is clicked and the results appear;
hints are placed by clicking; a bad file shows a message; every tab renders.
Screenshots go to a tmp dir and, when ``COLORBENCH_SCREENSHOTS`` is set, there.
In CI (``CI=true``) a missing browser or Playwright fails these tests.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Optional

import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
PHOTO = REPO_ROOT / "colorbench" / "data" / "builtin" / "opencv_fruits.jpg"  # 512 x 480
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TIMEOUT_MS = 90_000

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(600)]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI requires the browser tests to run)")
    pytest.skip(reason)


def find_chromium() -> Optional[str]:
    """``$COLORBENCH_CHROMIUM`` or the first of chromium / chromium-browser / google-chrome on PATH."""
    env = os.environ.get("COLORBENCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        _unavailable("Chromium is not installed (Debian package 'chromium')")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the 'playwright' Python package is not installed (requirements-test.txt)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def page(browser, app_server, save_shot, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    pg.goto(app_server.url, wait_until="domcontentloaded")
    pg.wait_for_selector("#colorize-run")
    yield pg
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:  # evidence: what the page showed, and the server's log
        save_shot(pg.screenshot(full_page=True), f"FAILED_{request.node.name}")
        print(app_server.log_tail())
    context.close()


def shot(page, name: str, save_shot) -> Path:
    page.wait_for_timeout(800)  # let images finish painting
    return save_shot(page.screenshot(full_page=True), name)


def upload(page, path: Path) -> None:
    page.set_input_files("#colorize-input input[type=file]", str(path))


def choose_models(page, labels) -> None:
    """Empty the model menu, then pick each option by its label."""
    page.click("#colorize-models .remove-all")
    for label in labels:
        page.click("#colorize-models input")
        page.keyboard.type(label.split(" ")[0])
        page.get_by_role("option", name=label, exact=True).click()
    page.keyboard.press("Escape")
    tokens = page.locator("#colorize-models .token").all_inner_texts()
    assert [t.strip() for t in tokens] == list(labels), tokens


def fetch_image(page, url: str) -> Image.Image:
    resp = page.request.get(url)
    assert resp.ok, f"{url}: HTTP {resp.status}"
    return Image.open(io.BytesIO(resp.body()))


def test_upload_colorize_and_results_appear(page, save_shot):
    shot(page, "01_colorize_tab", save_shot)
    upload(page, PHOTO)
    page.wait_for_selector("#colorize-input img")
    choose_models(page, ["gray (baseline)", "random (baseline)"])
    page.click("#colorize-run")
    # original (a colour photo), lightness input, gray, random
    page.wait_for_function("document.querySelectorAll('#colorize-gallery img').length >= 4", timeout=TIMEOUT_MS)
    status = page.inner_text("#colorize-status")
    assert "512×480" in status and "reduced to its lightness" in status
    srcs = [img.get_attribute("src") for img in page.locator("#colorize-gallery img").all()]
    assert all(s and s.endswith(".png") for s in srcs), srcs
    result = fetch_image(page, next(s for s in srcs if s.endswith("_random.png")))
    assert result.format == "PNG" and result.size == (512, 480)
    slider = page.locator("#colorize-slider img")
    assert slider.count() == 2
    files = "".join(page.inner_text("#colorize-files").split())  # names are split over elements
    assert "opencv_fruits_gray.png" in files and "opencv_fruits_random.png" in files
    shot(page, "02_colorize_result", save_shot)


def test_hints_are_placed_by_clicking_and_undone(page, save_shot):
    upload(page, PHOTO)
    page.click("#colorize-hints")
    canvas = page.locator("#colorize-canvas img")
    canvas.wait_for()
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.25})
    hints = page.locator("#colorize-hints")
    page.wait_for_function("document.querySelector('#colorize-hints').innerText.includes('1 hint(s)')")
    text = hints.inner_text()
    # the canvas shows the 512x480 photo; a click at (50%, 25%) is pixel (256, 120) of the original (±2 px)
    coords = text.split("1 hint(s): (")[1].split(")")[0]
    x, y = (int(v) for v in coords.split(","))
    assert abs(x - 256) <= 2 and abs(y - 120) <= 2
    shot(page, "03_colorize_hints", save_shot)
    page.click("#colorize-undo")
    page.wait_for_function("document.querySelector('#colorize-hints').innerText.includes('No hints')")


def test_bad_upload_shows_message_and_page_keeps_working(page, save_shot, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_text("not an image, only text\n")
    upload(page, bad)
    toast = page.locator(".toast-body", has_text="not an image we can read")
    toast.first.wait_for()
    page.wait_for_function("!document.querySelector('#colorize-input img')")  # the refused file is cleared
    shot(page, "04_colorize_bad_upload", save_shot)
    # recover by picking an example: the builtin photos, sorted by name (first: opencv_aero1, 512 x 384)
    page.locator("#colorize-examples img").first.click()
    page.wait_for_selector("#colorize-input img")
    choose_models(page, ["gray (baseline)"])
    page.click("#colorize-run")
    page.wait_for_function("document.querySelectorAll('#colorize-gallery img').length >= 3", timeout=TIMEOUT_MS)
    assert "512×384" in page.inner_text("#colorize-status")


def test_every_tab_renders(page, save_shot):
    page.get_by_role("tab", name="Video").click()
    page.wait_for_selector("#video-run", state="visible")
    assert "Limits: up to 3 s" in page.inner_text("#video-info")
    shot(page, "05_video_tab", save_shot)

    page.get_by_role("tab", name="Leaderboard").click()
    page.wait_for_selector("#lb-message", state="visible")
    message = page.inner_text("#lb-message")
    assert "No benchmark results" in message or "row(s)" in message
    shot(page, "06_leaderboard_tab", save_shot)

    page.get_by_role("tab", name="About").click()
    page.wait_for_selector("#about-metrics", state="visible")
    about = page.inner_text("#about-metrics")
    assert "auc" in about and "fooled" in about
    shot(page, "07_about_tab", save_shot)

    turing = page.get_by_role("tab", name="Turing test")
    if turing.count():
        turing.click()
        page.wait_for_timeout(1500)
        shot(page, "08_turing_tab", save_shot)


def test_oversized_and_bomb_uploads_show_messages(page, save_shot, tmp_path):
    import numpy as np

    big = tmp_path / "big.png"  # the session app allows 2 MB uploads
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)).save(big)
    upload(page, big)
    page.locator(".toast-body", has_text="size").first.wait_for()
    shot(page, "09_colorize_oversized_upload", save_shot)
    page.reload(wait_until="domcontentloaded")
    page.wait_for_selector("#colorize-run")

    bomb = tmp_path / "bomb.png"  # a 60000 x 60000 header in a few bytes
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    upload(page, bomb)
    page.locator(".toast-body", has_text="too large").first.wait_for()
    # the refused file is cleared from the input: the upload prompt is back
    page.wait_for_function("!document.querySelector('#colorize-input img')")
