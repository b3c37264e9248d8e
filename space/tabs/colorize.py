"""Colorize tab: upload a photo, run one or several models, compare, download.

Also defines the public ``/colorize`` API endpoint (image file, model name ->
PNG) used by ``gradio_client``. Every image goes through
``colorbench.io.load_image`` and ``colorbench.pipeline.colorize``: the one path.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import gradio as gr
import numpy as np

from ..context import AppContext, ModelStatus

log = logging.getLogger(__name__)

VIEW_SIDE = 768  # longest side of the hint canvas shown in the page
OUTPUT_TTL = 3600.0  # seconds result files stay on disk
HINT_RADIUS_FRAC = 0.018  # marker radius as a fraction of the canvas's longest side


def checked_image(**kwargs: Any) -> gr.Image:
    """A ``gr.Image`` that hands undecodable uploads to our loader instead of failing.

    Gradio's own preprocessing opens the file with PIL and fails with a generic
    error for empty, truncated or non-image files; here the upload's path is
    passed on unchanged so ``colorbench.io.load_image`` can say what is wrong.
    (The override is per instance: subclassing a Gradio component would make
    Gradio write a ``.pyi`` stub next to this module at import.)
    """
    image = gr.Image(**kwargs)
    base = image.preprocess

    def preprocess(payload):
        try:
            return base(payload)
        except Exception as e:  # PIL / gradio errors on bad files: our loader explains them
            log.info("upload not decodable by gradio (%s); passing the path to the loader", type(e).__name__)
            return str(payload.path) if payload is not None and getattr(payload, "path", None) else None

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


# --------------------------------------------------------------------------- helpers


def _err(message: str, title: str = "Error") -> gr.Error:
    """A message for the person using the page (no server traceback: it is not a bug)."""
    return gr.Error(message, title=title, print_exception=False)


def user_error(e: BaseException) -> gr.Error:
    """A ``gr.Error`` with a sentence for a person, for any failure of a colorize call."""
    from colorbench.io import ImageError
    from colorbench.registry import UnknownNameError
    from colorbench.weights import WeightsCorrupted, WeightsUnavailable

    if isinstance(e, gr.Error):
        return e
    if isinstance(e, ImageError):
        return _err(str(e), title="Cannot use this file")
    if isinstance(e, UnknownNameError):
        return _err(str(e), title="Unknown model")
    if isinstance(e, (WeightsUnavailable, WeightsCorrupted)):
        return _err(f"This model's weights are unavailable: {e}", title="Model unavailable")
    if isinstance(e, MemoryError):
        return _err("The image is too large to process with the memory available.", title="Too large")
    log.exception("colorize failed", exc_info=e)
    return _err(f"Colorization failed ({type(e).__name__}). The error was logged.", title="Error")


def load_checked(path: Optional[str], ctx: AppContext) -> np.ndarray:
    """Load an uploaded file with the project's loader; ``gr.Error`` with its message otherwise."""
    from colorbench.io import load_image

    if not path:
        raise _err("Upload a photo first (or pick an example).", title="No image")
    try:
        return load_image(path, max_pixels=ctx.max_pixels)
    except Exception as e:
        raise user_error(e) from None


def is_colour(rgb: np.ndarray, tol: int = 3, frac: float = 1e-3) -> bool:
    """True when more than ``frac`` of the pixels have channels differing by more than ``tol``."""
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))  # subsample big images
    s = rgb[::step, ::step].astype(np.int16)
    spread = s.max(axis=2) - s.min(axis=2)
    return bool((spread > tol).mean() > frac)


def new_output_dir(ctx: AppContext) -> Path:
    """A fresh folder for one request's files; folders older than ``OUTPUT_TTL`` are removed."""
    root = ctx.outputs_dir
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > OUTPUT_TTL:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    out = root / uuid.uuid4().hex
    out.mkdir()
    return out


def write_png(rgb: np.ndarray, path: Path) -> str:
    from colorbench.io import encode_png

    path.write_bytes(encode_png(rgb))
    return str(path)


def safe_stem(path: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem)[:40].strip("_")
    return stem or "image"


def parse_colour(value: Optional[str]) -> Tuple[int, int, int]:
    """``#rrggbb``, ``#rgb`` or ``rgb(a)(r, g, b[, a])`` -> (r, g, b) in 0..255."""
    v = (value or "").strip()
    m = re.fullmatch(r"#([0-9a-fA-F]{6})([0-9a-fA-F]{2})?", v)
    if m:
        h = m.group(1)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    m = re.fullmatch(r"#([0-9a-fA-F]{3})", v)
    if m:
        return tuple(int(c * 2, 16) for c in m.group(1))  # type: ignore[return-value]
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*[\d.]+\s*)?\)", v)
    if m:
        return tuple(int(round(min(255.0, float(c)))) for c in m.groups())  # type: ignore[return-value]
    raise _err(f"Cannot read the colour {value!r}; pick one with the colour picker.", title="Colour")


def model_label(st: ModelStatus) -> str:
    extra = [st.kind] if st.kind else []
    if st.hints:
        extra.append("hints")
    return f"{st.name} ({', '.join(extra)})" if extra else st.name


def unavailable_markdown(statuses: Sequence[ModelStatus]) -> str:
    bad = [s for s in statuses if not s.available]
    if not bad:
        return "Every registered model can run here."
    return "\n".join(f"- **{s.name}** — {s.reason}" for s in bad)


def unavailable_label(n_bad: int) -> str:
    return f"Unavailable models ({n_bad})" if n_bad else "All models available"


def models_markdown(statuses: Sequence[ModelStatus], chosen: Sequence[str]) -> str:
    by_name = {s.name: s for s in statuses}
    lines = []
    for name in chosen or []:
        s = by_name.get(name)
        if s is None:
            continue
        desc = s.info.get("description", "")
        paper = s.info.get("paper", "")
        note = f" _{s.reason}_" if s.reason else ""
        lines.append(f"**{name}** — {desc} {('*' + paper + '*') if paper else ''}{note}".strip())
    return "\n\n".join(lines)


def draw_hints(view: np.ndarray, hints: Sequence[Sequence[Any]], scale: float) -> np.ndarray:
    """Draw hint markers (filled in their colour, ringed black and white) on a canvas copy."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(view)
    d = ImageDraw.Draw(img)
    r = max(4, int(HINT_RADIUS_FRAC * max(view.shape[:2])))
    for x, y, rgb in hints:
        cx, cy = x / scale, y / scale
        d.ellipse([cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2], fill=(0, 0, 0))
        d.ellipse([cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1], fill=(255, 255, 255))
        d.ellipse([cx - r + 1, cy - r + 1, cx + r - 1, cy + r - 1], fill=tuple(int(c) for c in rgb))
    return np.asarray(img)


def hints_markdown(hints: Sequence[Sequence[Any]]) -> str:
    if not hints:
        return "No hints. Click the image to place one in the colour picked above."
    items = ", ".join(f"({int(x)}, {int(y)}) #{r:02x}{g:02x}{b:02x}" for x, y, (r, g, b) in hints)
    return f"{len(hints)} hint(s): {items}"


# --------------------------------------------------------------------------- handlers


class ColorizeHandlers:
    """The tab's event functions, bound to one :class:`AppContext` (testable without a browser)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    # the upload: validate, make the hint canvas (the lightness the models see)
    def on_image(self, path: Optional[str]):
        """-> (input image, source state, canvas image, hints state, hints text).

        A file the loader refuses gives a warning in the page and clears the input.
        """
        from colorbench.pipeline import colorize

        if not path:
            return gr.update(), None, None, [], hints_markdown([])
        try:
            rgb = load_checked(path, self.ctx)
        except gr.Error as e:
            gr.Warning(str(e.message), title=e.title)
            return None, None, None, [], hints_markdown([])
        H, W = rgb.shape[:2]
        scale = max(1.0, max(H, W) / VIEW_SIDE)
        vh, vw = max(1, round(H / scale)), max(1, round(W / scale))
        from PIL import Image

        small = np.asarray(Image.fromarray(rgb).resize((vw, vh), Image.BILINEAR)) if scale > 1 else rgb
        view = colorize(small, "gray")
        out = new_output_dir(self.ctx)
        view_path = write_png(view, out / "canvas.png")
        src = {"path": str(path), "w": W, "h": H, "scale": W / vw, "view": view_path, "colour": is_colour(rgb)}
        return gr.update(), src, view_path, [], hints_markdown([])

    def _canvas(self, src: Optional[dict], hints: List) -> Optional[np.ndarray]:
        if not src:
            return None
        from colorbench.io import load_image

        return draw_hints(load_image(src["view"]), hints, src["scale"])

    def add_hint(self, src: Optional[dict], hints: List, colour: str, evt: gr.SelectData):
        """A click on the canvas -> one more hint ``[x, y, [r, g, b]]`` in original pixels."""
        if not src:
            raise _err("Upload a photo first, then click it to place hints.", title="No image")
        x, y = evt.index[0], evt.index[1]
        ox = min(src["w"] - 1, max(0, int(x * src["scale"])))
        oy = min(src["h"] - 1, max(0, int(y * src["scale"])))
        hints = list(hints or []) + [[ox, oy, list(parse_colour(colour))]]
        return self._canvas(src, hints), hints, hints_markdown(hints)

    def undo_hint(self, src: Optional[dict], hints: List):
        hints = list(hints or [])[:-1]
        return self._canvas(src, hints), hints, hints_markdown(hints)

    def clear_hints(self, src: Optional[dict], hints: List):
        return self._canvas(src, []), [], hints_markdown([])

    def on_models(self, chosen: Sequence[str]):
        """-> (temperature slider update, model notes, hints accordion update)."""
        statuses = self.ctx.catalog.statuses()
        by = {s.name: s for s in statuses}
        temp = any(by[n].temperature for n in chosen or [] if n in by)
        hints = any(by[n].hints for n in chosen or [] if n in by)
        return gr.update(visible=temp), models_markdown(statuses, chosen), (gr.update(open=True) if hints
                                                                           else gr.update())

    def refresh_models(self, chosen: Optional[Sequence[str]]):
        """On page load: the menu and the unavailable list as they are now (a model may have
        been found unavailable since start). -> (menu, unavailable text, accordion)."""
        statuses = self.ctx.catalog.statuses()
        available = [s for s in statuses if s.available]
        names = {s.name for s in available}
        keep = [c for c in (chosen or []) if c in names]
        if not keep:
            default = self.ctx.pick_default_model()
            keep = [default] if default else []
        n_bad = len(statuses) - len(available)
        return (gr.update(choices=[(model_label(s), s.name) for s in available], value=keep),
                unavailable_markdown(statuses), gr.update(label=unavailable_label(n_bad)))

    def run(self, path: Optional[str], chosen: Sequence[str], T: float, hints: List,
            progress=gr.Progress()):
        """Colorize with every chosen model.

        Returns (before/after slider, side-by-side gallery, PNG files, status
        text, compare-radio update, results state).
        """
        ctx = self.ctx
        chosen = [c for c in (chosen or []) if c]
        if not chosen:
            raise _err("Choose at least one model.", title="No model")
        rgb = load_checked(path, ctx)
        from colorbench.pipeline import colorize

        H, W = rgb.shape[:2]
        out = new_output_dir(ctx)
        stem = safe_stem(path or "image")
        colour = is_colour(rgb)
        gray = colorize(rgb, "gray")
        gray_path = write_png(gray, out / f"{stem}_lightness.png")
        gallery: List[Tuple[str, str]] = []
        if colour:
            gallery.append((write_png(rgb, out / f"{stem}_original.png"), "Original (colour, for comparison)"))
        gallery.append((gray_path, "Input: lightness only"))
        results: Dict[str, str] = {}
        notes: List[str] = []
        errors: List[str] = []
        ignored: List[str] = []
        for i, name in enumerate(chosen):
            progress((i, len(chosen)), desc=f"{name}")
            st = ctx.catalog.status(name)
            if not st.available:
                errors.append(f"{name}: unavailable — {st.reason}")
                continue
            use_hints = [tuple(h[:2]) + (tuple(h[2]),) for h in hints or []] if st.hints else None
            if hints and not st.hints:
                ignored.append(name)
            t0 = time.perf_counter()
            try:
                res = colorize(rgb, name, T=float(T) if st.temperature else None, hints=use_hints or None)
            except Exception as e:
                from colorbench.weights import WeightsCorrupted, WeightsUnavailable

                if isinstance(e, (WeightsUnavailable, WeightsCorrupted)):
                    ctx.catalog.mark_unavailable(name, str(e))
                err = user_error(e)
                errors.append(f"{name}: {err.message}")
                continue
            dt = time.perf_counter() - t0
            p = write_png(res, out / f"{stem}_{name}.png")
            results[name] = p
            gallery.append((p, f"{name}" + (f" (T={T:.2f})" if st.temperature else "")))
            notes.append(f"{name} {dt:.2f} s")
        if not results:
            raise _err("No model could colorize this image. " + " ".join(errors), title="Failed")
        for e in errors:
            gr.Warning(e)
        first = next(iter(results))
        status = (f"Colorized {W}×{H} px" + (" (colour photo reduced to its lightness)" if colour else "")
                  + ": " + "; ".join(notes) + "."
                  + (f" Hints ignored by {', '.join(ignored)} (they take none)." if ignored else ""))
        radio = gr.update(choices=list(results), value=first, visible=len(results) > 1)
        state = {"before": gray_path, "results": results}
        return (gray_path, results[first]), gallery, list(results.values()), status, radio, state

    def compare(self, state: Optional[dict], name: Optional[str]):
        if not state or name not in state.get("results", {}):
            return gr.update()
        return (state["before"], state["results"][name])

    def api(self, file_path: Optional[str], model: Optional[str]) -> str:
        """The ``/colorize`` endpoint: image file + model name -> PNG path at the input's size."""
        ctx = self.ctx
        name = (model or "").strip() or ctx.pick_default_model() or ""
        if name not in ctx.catalog.names:
            from colorbench.models import model_info

            try:
                model_info(name)  # unknown names raise with a "did you mean" hint
            except Exception as e:
                raise user_error(e) from None
            raise _err(f"Model {name!r} is not offered by this app.", title="Unknown model")
        st = ctx.catalog.status(name)
        if not st.available:
            raise _err(f"Model {name!r} is unavailable here: {st.reason}", title="Model unavailable")
        rgb = load_checked(file_path, ctx)
        from colorbench.pipeline import colorize

        try:
            res = colorize(rgb, name)
        except Exception as e:
            raise user_error(e) from None
        out = new_output_dir(ctx)
        return write_png(res, out / f"{safe_stem(file_path or 'image')}_{name}.png")


# --------------------------------------------------------------------------- layout


def build(ctx: AppContext) -> List[Dict[str, Any]]:
    """Lay out the Colorize tab inside the current ``gr.Blocks`` (call within a ``gr.Tab``).

    Returns the page-load events to register (``Blocks.load`` keyword arguments).
    """
    h = ColorizeHandlers(ctx)
    statuses = ctx.catalog.statuses()
    available = [s for s in statuses if s.available]
    default = ctx.pick_default_model()
    n_bad = sum(not s.available for s in statuses)

    src_state = gr.State(None)
    hints_state = gr.State([])
    results_state = gr.State(None)

    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            image_in = checked_image(label="Photo (grayscale or colour)", type="filepath", image_mode=None,
                                     sources=["upload", "clipboard"], format="png", height=320,
                                     elem_id="colorize-input")
            examples = ctx.example_images()
            if examples:
                gr.Examples(examples=[[str(p)] for p in examples], inputs=[image_in], examples_per_page=10,
                            label="Examples (builtin evaluation set)", elem_id="colorize-examples")
            models = gr.Dropdown(choices=[(model_label(s), s.name) for s in available],
                                 value=[default] if default else [], multiselect=True, label="Models",
                                 info="One or several; each result is shown side by side.",
                                 elem_id="colorize-models")
            model_notes = gr.Markdown(models_markdown(statuses, [default] if default else []),
                                      elem_id="colorize-model-notes")
            run = gr.Button("Colorize", variant="primary", elem_id="colorize-run")
            with gr.Accordion(unavailable_label(n_bad), open=False, elem_id="colorize-unavailable-box") as bad_box:
                unavailable = gr.Markdown(unavailable_markdown(statuses), elem_id="colorize-unavailable")
            default_temp = bool(default and ctx.catalog.status(default).temperature)
            temperature = gr.Slider(0.05, 1.0, value=0.38, step=0.01, label="Temperature (classification models)",
                                    info="Annealed mean: lower is more vivid, 1 is the plain mean.",
                                    visible=default_temp)
            with gr.Accordion("User hints (SIGGRAPH17)", open=False, elem_id="colorize-hints") as hints_box:
                gr.Markdown("Click the lightness image to place a colour hint at that point. "
                            "Only models that accept hints use them (marked *hints* in the menu).")
                colour = gr.ColorPicker(value="#d03020", label="Hint colour", elem_id="colorize-hint-colour")
                with gr.Row():
                    undo = gr.Button("Undo last hint", size="sm", elem_id="colorize-undo")
                    clear = gr.Button("Clear hints", size="sm", elem_id="colorize-clear")
                canvas = gr.Image(label="Click to add hints", interactive=False, format="png", height=320,
                                  elem_id="colorize-canvas")
                hints_text = gr.Markdown(hints_markdown([]))
        with gr.Column(scale=3, min_width=360):
            status = gr.Markdown("Upload a photo or pick an example, then press **Colorize**.",
                                 elem_id="colorize-status")
            slider = gr.ImageSlider(label="Before / after (drag the handle)", format="png", type="filepath",
                                    elem_id="colorize-slider", max_height=560)
            compare = gr.Radio(choices=[], label="Before / after for", visible=False)
            gallery = gr.Gallery(label="Side by side", format="png", columns=3, rows=1, object_fit="contain",
                                 elem_id="colorize-gallery")
            files = gr.File(label="Download PNG", file_count="multiple", interactive=False,
                            elem_id="colorize-files")

    image_in.change(h.on_image, inputs=[image_in], outputs=[image_in, src_state, canvas, hints_state, hints_text],
                    api_visibility="private", show_progress="minimal")
    models.change(h.on_models, inputs=[models], outputs=[temperature, model_notes, hints_box], api_visibility="private",
                  show_progress="hidden")
    canvas.select(h.add_hint, inputs=[src_state, hints_state, colour], outputs=[canvas, hints_state, hints_text],
                  api_visibility="private", show_progress="hidden")
    undo.click(h.undo_hint, inputs=[src_state, hints_state], outputs=[canvas, hints_state, hints_text],
               api_visibility="private", show_progress="hidden")
    clear.click(h.clear_hints, inputs=[src_state, hints_state], outputs=[canvas, hints_state, hints_text],
                api_visibility="private", show_progress="hidden")
    run.click(h.run, inputs=[image_in, models, temperature, hints_state],
              outputs=[slider, gallery, files, status, compare, results_state], api_visibility="private")
    compare.change(h.compare, inputs=[results_state, compare], outputs=[slider], api_visibility="private",
                   show_progress="hidden")

    # the public API: not shown in the page
    with gr.Row(visible=False):
        api_file = gr.File(label="image file", type="filepath")
        api_model = gr.Textbox(label="model name", value=default or "")
        api_out = gr.Image(label="colorized", format="png", type="filepath")
        api_button = gr.Button("api")
    on_load = [dict(fn=h.refresh_models, inputs=[models], outputs=[models, unavailable, bad_box])]
    api_button.click(h.api, inputs=[api_file, api_model], outputs=[api_out], api_name="colorize",
                     api_description="Colorize an image file with a registered model; returns a PNG of the "
                                     "input's size whose lightness is the input's.")
    return on_load
