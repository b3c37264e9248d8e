"""Video tab: colorize a short clip frame by frame, optionally smoothing ab over time.

Each frame follows the pipeline's path (L at full resolution, the model on L at
its input size, ab upsampled and recombined); the only addition is an
exponential moving average of the model's ab across frames, reset at scene cuts,
which removes most colour flicker. Audio is carried over (copied when the codec
fits MP4, else re-encoded to AAC). Output: H.264 MP4.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import gradio as gr
import numpy as np

from ..context import AppContext
from .colorize import _err, model_label, new_output_dir, safe_stem, user_error

log = logging.getLogger(__name__)

BATCH = 8  # frames per model call
CUT_THRESHOLD = 12.0  # mean |ΔL| (L units, at model size) above which smoothing restarts
COPY_AUDIO = {"aac", "mp3", "alac", "ac3"}


class VideoError(ValueError):
    """The clip cannot be used; the message says why."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration: float
    frames: int
    has_audio: bool


def probe(path: str) -> VideoInfo:
    """Read a clip's size, rate, duration and frame count from its headers (no decoding)."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise VideoError("The file has no video stream.")
            v = c.streams.video[0]
            fps = float(v.average_rate or v.guessed_rate or 0) or 25.0
            if v.duration is not None and v.time_base is not None:
                duration = float(v.duration * v.time_base)
            elif c.duration is not None:
                duration = c.duration / 1_000_000
            else:
                duration = 0.0
            frames = int(v.frames or round(duration * fps))
            w, h = v.codec_context.width, v.codec_context.height
            return VideoInfo(w, h, fps, duration, frames, bool(c.streams.audio))
    except VideoError:
        raise
    except Exception as e:  # av.error.InvalidDataError and friends
        raise VideoError(f"This file is not a video we can read ({type(e).__name__}). "
                         "Accepted: MP4, WebM, MOV, AVI, MKV.") from None


def check_limits(info: VideoInfo, max_seconds: float, max_side: int, max_frames: int) -> None:
    """Raise :class:`VideoError` with the limit that a clip exceeds."""
    if info.width <= 0 or info.height <= 0:
        raise VideoError("The video has no readable frame size.")
    if info.duration > max_seconds + 1e-6:
        raise VideoError(f"The clip lasts {info.duration:.1f} s; the limit is {max_seconds:.0f} s. Trim it first.")
    if max(info.width, info.height) > max_side:
        raise VideoError(f"The clip is {info.width}×{info.height}; the limit is {max_side} px on the longest side. "
                         "Downscale it first.")
    if info.frames > max_frames:
        raise VideoError(f"The clip has {info.frames} frames; the limit is {max_frames}.")


def colorize_video(src: str, dst: str, model: str, *, T: Optional[float] = None, smoothing: float = 0.0,
                   max_seconds: float = 20.0, max_side: int = 1280, max_frames: int = 600,
                   progress: Optional[Callable[[int, int], None]] = None) -> VideoInfo:
    """Colorize ``src`` into an H.264/AAC MP4 at ``dst``.

    Args:
        model: registered model name.
        T: annealed-mean temperature (classification models only).
        smoothing: EMA weight of the previous frames' ab in [0, 1); 0 disables.
        progress: called as ``progress(done_frames, total_frames)``.

    Returns:
        The input's :class:`VideoInfo`.
    """
    import av
    import torch

    from colorbench.pipeline import get_model, lightness, model_input, predict_ab, recombine

    if not 0.0 <= smoothing < 1.0:
        raise ValueError("smoothing must be in [0, 1)")
    info = probe(src)
    check_limits(info, max_seconds, max_side, max_frames)
    net = get_model(model)
    size = (int(getattr(net, "input_size", 256)),) * 2
    Tm = T if getattr(net, "supports_temperature", False) else None
    W, H = info.width - info.width % 2, info.height - info.height % 2  # yuv420p needs even sides
    total = max(info.frames, 1)

    inp = av.open(src)
    out = av.open(dst, mode="w", format="mp4")
    try:
        vin = inp.streams.video[0]
        rate = vin.average_rate or vin.guessed_rate or Fraction(25, 1)
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = W, H, "yuv420p"
        vout.options = {"crf": "20", "preset": "veryfast"}
        ain = inp.streams.audio[0] if inp.streams.audio else None
        aout = None
        if ain is not None:
            if ain.codec_context.name in COPY_AUDIO:
                aout = out.add_stream_from_template(ain)
            else:
                aout = out.add_stream("aac", rate=ain.codec_context.sample_rate or 48000)

        prev_ab: Optional[torch.Tensor] = None
        prev_L: Optional[torch.Tensor] = None
        done = 0
        batch: list = []

        def flush() -> None:
            nonlocal prev_ab, prev_L, done
            if not batch:
                return
            Ls = [lightness(f) for f in batch]
            Lsmall = torch.cat([model_input(f, size) for f in batch])
            ab = predict_ab(net, Lsmall, T=Tm)
            for i in range(ab.shape[0]):
                cur = ab[i : i + 1]
                if smoothing > 0 and prev_ab is not None and prev_L is not None:
                    cut = float((Lsmall[i : i + 1] - prev_L).abs().mean()) > CUT_THRESHOLD
                    if not cut:
                        cur = smoothing * prev_ab + (1.0 - smoothing) * cur
                prev_ab, prev_L = cur, Lsmall[i : i + 1]
                rgb = recombine(Ls[i], cur)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                for pkt in vout.encode(frame):
                    out.mux(pkt)
                done += 1
                if progress:
                    progress(done, max(total, done))
            batch.clear()

        for frame in inp.decode(vin):
            rgb = frame.to_ndarray(format="rgb24")[:H, :W]
            batch.append(np.ascontiguousarray(rgb))
            if done + len(batch) > max_frames:
                raise VideoError(f"The clip has more than {max_frames} frames; the limit is {max_frames}.")
            if len(batch) == BATCH:
                flush()
        flush()
        for pkt in vout.encode(None):
            out.mux(pkt)
        if done == 0:
            raise VideoError("No frame of this video could be decoded.")

        if ain is not None and aout is not None:
            inp.seek(0)
            if ain.codec_context.name in COPY_AUDIO:
                for pkt in inp.demux(ain):
                    if pkt.dts is None:
                        continue
                    pkt.stream = aout
                    out.mux(pkt)
            else:
                for af in inp.decode(ain):
                    af.pts = None
                    for pkt in aout.encode(af):
                        out.mux(pkt)
                for pkt in aout.encode(None):
                    out.mux(pkt)
    finally:
        out.close()
        inp.close()
    return info


class VideoHandlers:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def refresh_models(self, chosen: Optional[str]):
        """On page load: the model menu as it is now."""
        available = [s for s in self.ctx.catalog.statuses() if s.available]
        names = {s.name for s in available}
        value = chosen if chosen in names else self.ctx.pick_default_model()
        return gr.update(choices=[(model_label(s), s.name) for s in available], value=value)

    def on_model(self, name: Optional[str]):
        """Show the temperature slider only for models that take a temperature."""
        return gr.update(visible=bool(name) and self.ctx.catalog.status(name).temperature)

    def describe(self, path: Optional[str]) -> str:
        if not path:
            return self.limits_text()
        try:
            info = probe(path)
            check_limits(info, self.ctx.max_video_seconds, self.ctx.max_video_side, self.ctx.max_video_frames)
        except VideoError as e:
            gr.Warning(str(e), title="Cannot use this clip")
            return f"**Cannot use this clip:** {e}"
        audio = "with audio" if info.has_audio else "no audio"
        return f"{info.width}×{info.height}, {info.fps:.2f} fps, {info.duration:.1f} s, {info.frames} frames, {audio}."

    def limits_text(self) -> str:
        c = self.ctx
        return (f"Limits: up to {c.max_video_seconds:.0f} s, {c.max_video_side} px on the longest side, "
                f"{c.max_video_frames} frames.")

    def run(self, path: Optional[str], model: Optional[str], T: float, smooth: bool, strength: float,
            progress=gr.Progress()):
        ctx = self.ctx
        if not path:
            raise _err("Upload a video clip first.", title="No video")
        if not model:
            raise _err("Choose a model.", title="No model")
        st = ctx.catalog.status(model)
        if not st.available:
            raise _err(f"Model {model!r} is unavailable here: {st.reason}", title="Model unavailable")
        out_dir = new_output_dir(ctx)
        dst = out_dir / f"{safe_stem(path)}_{model}.mp4"
        t0 = time.perf_counter()
        progress((0, 1), desc="Reading the clip")

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Colorizing frames", unit="frames")

        try:
            info = colorize_video(path, str(dst), model, T=float(T) if st.temperature else None,
                                  smoothing=float(strength) if smooth else 0.0,
                                  max_seconds=ctx.max_video_seconds, max_side=ctx.max_video_side,
                                  max_frames=ctx.max_video_frames, progress=report)
        except VideoError as e:
            raise _err(str(e), title="Cannot use this clip") from None
        except Exception as e:
            raise user_error(e) from None
        dt = time.perf_counter() - t0
        status = (f"Colorized {info.frames} frames ({info.width}×{info.height}) with {model} in {dt:.1f} s"
                  + (f", smoothing {strength:.2f}" if smooth else "") + ("; audio kept." if info.has_audio else "."))
        return str(dst), status


def build(ctx: AppContext) -> List[Dict[str, Any]]:
    """Lay out the Video tab inside the current ``gr.Tab``; returns its page-load events."""
    h = VideoHandlers(ctx)
    statuses = [s for s in ctx.catalog.statuses() if s.available]
    default = ctx.pick_default_model()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            video_in = gr.Video(label="Short clip", sources=["upload"], elem_id="video-input", height=300)
            info = gr.Markdown(h.limits_text(), elem_id="video-info")
            model = gr.Dropdown(choices=[(model_label(s), s.name) for s in statuses], value=default,
                                label="Model", elem_id="video-model")
            temperature = gr.Slider(0.05, 1.0, value=0.38, step=0.01, label="Temperature (classification models)",
                                    visible=bool(default and ctx.catalog.status(default).temperature))
            with gr.Row():
                smooth = gr.Checkbox(value=True, label="Temporal smoothing of ab",
                                     info="Averages colour over recent frames; restarts at scene cuts.")
                strength = gr.Slider(0.0, 0.95, value=0.6, step=0.05, label="Smoothing strength")
            run = gr.Button("Colorize video", variant="primary", elem_id="video-run")
        with gr.Column(scale=3, min_width=360):
            status = gr.Markdown("", elem_id="video-status")
            video_out = gr.Video(label="Colorized (MP4)", interactive=False, elem_id="video-output",
                                 buttons=["download"])
    model.change(h.on_model, inputs=[model], outputs=[temperature], api_visibility="private", show_progress="hidden")
    video_in.change(h.describe, inputs=[video_in], outputs=[info], api_visibility="private", show_progress="hidden")
    run.click(h.run, inputs=[video_in, model, temperature, smooth, strength], outputs=[video_out, status],
              api_name="colorize_video", concurrency_limit=1, concurrency_id="video")
    return [dict(fn=h.refresh_models, inputs=[model], outputs=[model])]
