"""End-to-end: the real app (``python app.py`` on a free port) driven with ``gradio_client``.

Also, in-process, the tab logic that the browser cannot reach here (hint
coordinates, leaderboard sorting/filtering, model availability reasons).
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILTIN = REPO_ROOT / "colorbench" / "data" / "builtin"
COLOUR_PHOTO = BUILTIN / "opencv_fruits.jpg"

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


def _lite0_available() -> bool:
    from space.context import ModelCatalog

    return ModelCatalog(("colorbench_lite0",), probe_network=False).status("colorbench_lite0").available


MODELS = ["gray", pytest.param("colorbench_lite0", marks=pytest.mark.skipif(
    not _lite0_available(), reason="colorbench_lite0 weights are not in weights/ yet"))]


@pytest.fixture(scope="module")
def client(app_server):
    return Client(app_server.url, verbose=False, download_files=str(app_server.data_dir.parent / "client"))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """A colour JPEG, an odd-sized grayscale PNG, and every kind of bad file."""
    d = tmp_path_factory.mktemp("inputs")
    out = {"colour": COLOUR_PHOTO}
    gray = Image.open(COLOUR_PHOTO).convert("L").crop((13, 7, 13 + 301, 7 + 157))
    gray.save(d / "odd_gray.png")
    out["gray"] = d / "odd_gray.png"
    (d / "empty.png").write_bytes(b"")
    out["empty"] = d / "empty.png"
    (d / "notes.png").write_text("this is a text file with an image extension\n")
    out["text"] = d / "notes.png"
    data = COLOUR_PHOTO.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    out["truncated"] = d / "truncated.jpg"
    out["huge"] = d / "huge.png"
    out["huge"].write_bytes(_png_header_only(60_000, 60_000))  # 3.6 GP claimed, a few bytes on disk
    return out


def _png_header_only(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w x h`` pixels (a decompression bomb's shape)."""
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _lightness(path: Path) -> np.ndarray:
    return rgb2lab(np.asarray(Image.open(path).convert("RGB")))[..., 0]


# --------------------------------------------------------------------------- the /colorize endpoint


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("kind", ["colour", "gray"])
def test_colorize_returns_png_of_input_size_with_input_lightness(client, images, model, kind):
    src = images[kind]
    result = Path(client.predict(handle_file(str(src)), model, api_name="/colorize"))
    with Image.open(result) as im:
        assert im.format == "PNG"
        assert im.mode == "RGB"
        with Image.open(src) as orig:
            assert im.size == orig.size
    dL = np.abs(_lightness(result) - _lightness(src))
    assert dL.max() <= 1.0, f"lightness differs by up to {dL.max():.2f}"
    if model == "gray":  # and it is the lightness alone, not the input handed back
        lab = rgb2lab(np.asarray(Image.open(result).convert("RGB")))
        assert np.hypot(lab[..., 1], lab[..., 2]).max() < 1.0


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_colour_model_output_has_colour(client, images):
    """``random`` takes ab from another photo: the result of a grayscale input is not gray."""
    result = Path(client.predict(handle_file(str(images["gray"])), "random", api_name="/colorize"))
    lab = rgb2lab(np.asarray(Image.open(result).convert("RGB")))
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 3.0


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.parametrize("bad,words", [
    ("empty", "empty"),
    ("text", "not an image"),
    ("truncated", "truncated"),
    ("huge", "limit"),
])
def test_bad_file_gives_clear_error_and_server_keeps_serving(client, images, bad, words):
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(images[bad])), "gray", api_name="/colorize")
    assert words in str(e.value).lower()
    ok = Path(client.predict(handle_file(str(images["gray"])), "gray", api_name="/colorize"))
    assert Image.open(ok).size == (301, 157)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_unknown_and_unavailable_models_are_explained(client, images):
    with pytest.raises(AppError, match="Did you mean 'gray'"):
        client.predict(handle_file(str(images["gray"])), "grey", api_name="/colorize")
    with pytest.raises(AppError, match="unavailable"):
        client.predict(handle_file(str(images["gray"])), "eccv16", api_name="/colorize")


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_upload_over_size_limit_is_refused_and_server_keeps_serving(client, app_server, images, tmp_path):
    big = tmp_path / "big.png"  # the session app allows 2 MB
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1100, 1100, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 2 * 2**20
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(big)), "gray", api_name="/colorize")
    assert "413" in str(e.value) or "size" in str(e.value).lower()
    assert app_server.alive()
    ok = Path(client.predict(handle_file(str(images["gray"])), "gray", api_name="/colorize"))
    assert Image.open(ok).size == (301, 157)


# --------------------------------------------------------------------------- video


def _make_clip(path: Path, seconds: float, size: str = "96x64", audio: bool = True) -> Path:
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-c:a", "aac"]
    cmd += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-shortest", str(path)]
    subprocess.run(cmd, check=True, timeout=60)
    return path


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_video_is_colorized_frame_by_frame_with_audio_kept(client, tmp_path):
    av = pytest.importorskip("av")
    clip = _make_clip(tmp_path / "clip.mp4", 1.5)
    out, status = client.predict(handle_file(str(clip)), "random", 0.38, True, 0.6, api_name="/colorize_video")
    out = out["video"] if isinstance(out, dict) else out
    assert "audio kept" in status
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert b.streams.audio, "the audio track was dropped"
        va, vb = a.streams.video[0], b.streams.video[0]
        assert (vb.codec_context.width, vb.codec_context.height) == (va.codec_context.width, va.codec_context.height)
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(fb) == len(fa) == 15
    # lightness is the input's up to H.264 compression; ab is not zero (random draws colours)
    dL = np.mean([np.abs(rgb2lab(x)[..., 0] - rgb2lab(y)[..., 0]).mean() for x, y in zip(fa, fb)])
    assert dL < 3.0
    chroma = np.mean([np.hypot(*rgb2lab(y)[..., 1:].transpose(2, 0, 1)).mean() for y in fb])
    assert chroma > 2.0


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_video_over_the_duration_limit_is_refused_clearly(client, tmp_path):
    clip = _make_clip(tmp_path / "long.mp4", 4.0, audio=False)  # the session app allows 3 s
    with pytest.raises(AppError, match="limit is 3 s"):
        client.predict(handle_file(str(clip)), "gray", 0.38, False, 0.6, api_name="/colorize_video")
    with pytest.raises(AppError, match="not a video"):
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(b"not a video at all" * 10)
        client.predict(handle_file(str(bad)), "gray", 0.38, False, 0.6, api_name="/colorize_video")


@pytest.mark.timeout(120)
def test_temporal_smoothing_reduces_flicker(tmp_path):
    """EMA of ab across frames: on a static clip with a flickering model, frame-to-frame
    ab change drops by about the smoothing factor."""
    av = pytest.importorskip("av")
    import torch

    from colorbench import pipeline
    from space.tabs.video import colorize_video

    class Flicker(torch.nn.Module):
        input_size = 32

        def __init__(self):
            super().__init__()
            self.n = 0

        def forward(self, L):
            out = []
            for _ in range(L.shape[0]):
                self.n += 1
                out.append(torch.full((1, 2, *L.shape[-2:]), 20.0 if self.n % 2 else -20.0))
            return torch.cat(out)

    clip = tmp_path / "static.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:size=64x48:rate=10:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)

    def ab_jumps(smoothing: float) -> float:
        key = ("flicker-test", True)
        pipeline._CACHE[key] = Flicker()
        try:
            out = tmp_path / f"out_{smoothing}.mp4"
            colorize_video(str(clip), str(out), "flicker-test", smoothing=smoothing)
        finally:
            pipeline._CACHE.pop(key, None)
        with av.open(str(out)) as c:
            a = np.array([rgb2lab(f.to_ndarray(format="rgb24"))[..., 1].mean() for f in c.decode(video=0)])
        return float(np.abs(np.diff(a[5:])).mean())

    raw, smooth = ab_jumps(0.0), ab_jumps(0.8)
    assert raw > 20.0
    assert smooth < 0.35 * raw


# --------------------------------------------------------------------------- tab logic, in process


@pytest.fixture
def ctx(tmp_path):
    from space.context import AppContext, ModelCatalog

    return AppContext(data_dir=tmp_path / "data", results_dir=tmp_path / "results", models=("gray", "random"),
                      default_model="gray", catalog=ModelCatalog(("gray", "random"), probe_network=False))


def test_hint_clicks_map_to_original_pixels_and_reach_colorize(ctx, monkeypatch):
    import gradio as gr

    from space.tabs import colorize as tab

    src_path = ctx.data_dir / "big.png"
    ctx.data_dir.mkdir(parents=True)
    Image.open(COLOUR_PHOTO).resize((1536, 1440)).save(src_path)  # shown at 768 px: scale 2
    h = tab.ColorizeHandlers(ctx)
    _, src, canvas, hints, _ = h.on_image(str(src_path))
    assert Image.open(canvas).size == (768, 720) and src["scale"] == pytest.approx(2.0)
    evt = gr.SelectData(None, {"index": [100, 50], "value": None})
    _, hints, text = h.add_hint(src, hints, "#ff0000", evt)
    _, hints, text = h.add_hint(src, hints, "rgba(0, 128, 255, 1)", gr.SelectData(None, {"index": [767, 719],
                                                                                          "value": None}))
    assert hints == [[200, 100, [255, 0, 0]], [1534, 1438, [0, 128, 255]]]
    assert text.startswith("2 hint(s)")
    _, hints, text = h.undo_hint(src, hints)
    assert hints == [[200, 100, [255, 0, 0]]]

    from colorbench import pipeline

    real = pipeline.colorize
    calls = []

    def spy(image, model, **kw):
        calls.append((model, kw.get("hints")))
        return real(image, "gray")

    monkeypatch.setattr(pipeline, "colorize", spy)
    monkeypatch.setattr(ctx.catalog, "status", lambda n: tab.ModelStatus(n, True, "", {"hints": n == "gray"}))
    h.run(str(src_path), ["gray", "random"], 0.38, hints, progress=lambda *a, **k: None)
    assert ("gray", [(200, 100, (255, 0, 0))]) in calls
    assert ("random", None) in calls

    # the tab's hint format reaches the real SIGGRAPH17 network (random init: no weights here)
    import torch

    from colorbench.models import create_model

    torch.manual_seed(0)
    net = create_model("siggraph17", pretrained=False)
    small = np.asarray(Image.open(src_path).resize((192, 180)))
    hint = [(96, 45, (255, 0, 0))]
    with_hint = real(small, net, hints=hint)
    without = real(small, net)
    assert with_hint.shape == without.shape == (180, 192, 3)
    assert np.abs(with_hint.astype(int) - without.astype(int)).max() > 0


def test_parse_colour_accepts_picker_formats():
    from space.tabs.colorize import parse_colour

    assert parse_colour("#0a0B0c") == (10, 11, 12)
    assert parse_colour("#f00") == (255, 0, 0)
    assert parse_colour("rgb(1, 2, 3)") == (1, 2, 3)
    assert parse_colour("rgba(255, 128.4, 0, 0.5)") == (255, 128, 0)
    import gradio as gr

    with pytest.raises(gr.Error):
        parse_colour("red-ish")


def test_run_refuses_missing_image_and_bad_upload_with_loader_message(ctx, tmp_path):
    import gradio as gr

    from space.tabs.colorize import ColorizeHandlers

    h = ColorizeHandlers(ctx)
    with pytest.raises(gr.Error, match="Upload a photo"):
        h.run(None, ["gray"], 0.38, [], progress=lambda *a, **k: None)
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(gr.Error) as e:
        h.run(str(bad), ["gray"], 0.38, [], progress=lambda *a, **k: None)
    assert "image" in e.value.message.lower()


def test_availability_reasons_for_unavailable_weights(tmp_path, monkeypatch):
    from space.context import ModelCatalog

    monkeypatch.setenv("COLORBENCH_WEIGHTS_DIR", str(tmp_path))  # nothing shipped here
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cat = ModelCatalog(("gray", "eccv16", "nope"), probe_network=False)
    by = {s.name: s for s in cat.statuses()}
    assert by["gray"].available and by["gray"].reason == ""
    assert not by["eccv16"].available and "offline" in by["eccv16"].reason and "COLORBENCH_ECCV16_WEIGHTS" in \
        by["eccv16"].reason
    assert not by["nope"].available and "Unknown model" in by["nope"].reason
    cat.mark_unavailable("gray", "download failed")
    assert not cat.status("gray").available


def test_leaderboard_sorting_filtering_and_plain_message_when_empty(ctx):
    import pandas as pd

    from space.tabs import leaderboard as lb

    table, msg, *_ = lb.LeaderboardHandlers(ctx).refresh(None, None, "", None)
    assert table["value"].empty and table["visible"] is False and "No benchmark results" in msg

    df = pd.DataFrame({
        "dataset": ["d"] * 4,
        "model": ["gray", "random", "eccv16", "ground_truth"],
        "type": ["baseline", "baseline", "classification", "ground truth (ceiling)"],
        "auc ↑": ["0.900 ± 0.010", "0.850 ± 0.020", "0.910 ± 0.010", "1.000"],
        "lpips ↓": ["0.200", "0.300", "0.150", "—"],
        "psnr ↑": ["24.1", "∞", "22.0", "∞"],
    })
    assert list(lb.sort_frame(df, "auc ↑")["model"]) == ["ground_truth", "eccv16", "gray", "random"]
    assert list(lb.sort_frame(df, "lpips ↓")["model"]) == ["eccv16", "gray", "random", "ground_truth"]
    assert lb.cell_number("∞") == float("inf") and lb.cell_number("-0.5 ± 0.1") == -0.5
    assert lb.has_values(df, "lpips ↓") and not lb.has_values(df.assign(x=["—"] * 4), "x")
    out = lb.filter_frame(df, ["lpips ↓"], "BASE", "lpips ↓")
    assert list(out.columns) == ["dataset", "model", "type", "lpips ↓"]
    assert list(out["model"]) == ["gray", "random"]


@pytest.mark.timeout(300)
def test_leaderboard_tab_on_real_results_shows_intervals_fooled_and_plots(ctx, tmp_path):
    """Results written by the benchmark runner and the leaderboard build, read by the tab."""
    from colorbench.bench.runner import BenchConfig, run_benchmark
    from colorbench.leaderboard import build_leaderboard
    from space.tabs import leaderboard as lb

    run_benchmark(BenchConfig(models=["ground_truth", "gray"], metrics=["auc"], out=str(ctx.results_dir),
                              cache=None, size=64, n_boot=50, progress=False))
    from colorbench.study.stats import write_fooled  # the study's own writer (rate, se in percent)

    write_fooled({"gray": {"rate": 10.0, "se": 2.0, "n_participants": 30, "n_judgments": 1200}},
                 ctx.results_dir / "study" / "fooled.json")
    build_leaderboard(ctx.results_dir)

    table, msg, dataset, columns, sort_by, plots, models = lb.LeaderboardHandlers(ctx).refresh(None, None, "", None)
    df = table["value"]
    assert dataset["value"] == "builtin" and "dataset" not in df.columns  # one dataset: selected, column dropped
    assert list(df["model"]) == ["ground_truth", "gray"]
    gray = df.set_index("model").loc["gray"]
    assert "±" in gray["auc ↑"]  # the interval is shown
    assert gray["fooled ↑"].startswith("10.0%") and "n=30" in gray["fooled ↑"]
    assert "fooled ↑" in columns["choices"]
    captions = [c for _, c in plots["value"]]
    assert "cumulative" in captions[0] and captions[1].endswith(": auc")  # curves, then the table's order
    assert all(Path(p).is_file() for p, _ in plots["value"])
    assert "**gray**" in models and "ECCV 2016" in models

    only, *_ = lb.LeaderboardHandlers(ctx).refresh("builtin", ["fooled ↑"], "gray", "fooled ↑")
    assert list(only["value"].columns) == ["model", "type", "fooled ↑"] and list(only["value"]["model"]) == ["gray"]
