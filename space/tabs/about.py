"""About tab: what each metric means and how the leaderboard's numbers were produced."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import gradio as gr

from ..context import AppContext

log = logging.getLogger(__name__)

#: plain-language meaning of each metric; the registry's exact definition is shown beside it
PLAIN: Dict[str, str] = {
    "auc": "How close the predicted colours are to the photo's, pixel by pixel: the share of pixels whose "
           "colour (ab) error is below a threshold, averaged over thresholds 0–150. 1 is perfect. "
           "Grayscale output already scores well, because most pixels of most photos are dull.",
    "auc_rebal": "The same curve with each pixel weighted by how rare its true colour is (ECCV16's class "
                 "rebalancing), so getting a red car right counts more than a grey road. Sorts the table.",
    "psnr": "Peak signal-to-noise ratio of the RGB result against the photo, in dB; higher is closer. "
            "Rewards safe, desaturated guesses.",
    "ssim": "Structural similarity of the result and the photo (1 is identical).",
    "mse": "Mean squared error of the RGB values (uint8 levels squared); lower is closer.",
    "lpips": "Learned perceptual distance (LPIPS): how different the two images look to a deep network "
             "calibrated on human judgments; lower is more similar.",
    "top1": "Semantic interpretability: an ImageNet classifier is run on the colorized image; the share of "
            "images it labels correctly (ECCV16's VGG test, here with the classifier named in the results).",
    "top1_agree": "Share of images where the classifier gives the colorized image the same label as the photo.",
    "colorfulness": "Hasler–Süsstrunk colourfulness of the result; compare it with the ground truth's row.",
    "sat_diff": "Difference in mean saturation between result and photo (how washed-out or garish it is).",
    "acc_u": "Hwang & Zhou's per-channel accuracy on the CIELUV u channel.",
    "acc_v": "Hwang & Zhou's per-channel accuracy on the CIELUV v channel.",
    "fooled": "The human Colorization Turing test: in pairs of the real photo and a model's colorization of "
              "its grayscale, the share of pairs where people picked the colorization as real. 50% would be "
              "indistinguishable. The ± is its bootstrap standard error over participants.",
}


def metric_rows() -> List[List[str]]:
    """[name, better, meaning, exact definition] for every registered metric, then the study's."""
    rows: List[List[str]] = []
    seen = set()
    try:
        from colorbench.metrics import METRICS

        names = METRICS.names()
    except Exception as e:  # a metric module that cannot import must not hide the page
        log.warning("metric registry unavailable: %s", e)
        names = []
    for name in names:
        try:
            entry = METRICS.get(name)
            definition = getattr(entry.fn, "definition", "") or ""
            hib = entry.meta.get("higher_is_better", getattr(entry.fn, "higher_is_better", True))
        except Exception:
            definition, hib = "", True
        rows.append([name, "higher ↑" if hib else "lower ↓", PLAIN.get(name, ""), definition])
        seen.add(name)
    # the study's column always; every known metric when the registry could not be read
    for name in (["fooled"] if names else list(PLAIN)):
        if name not in seen:
            better = "lower ↓" if name in ("lpips", "mse", "sat_diff") else "higher ↑"
            rows.append([name, better, PLAIN[name], ""])
    return rows


def metrics_markdown(rows: List[List[str]]) -> str:
    """One block per metric: name and direction, the plain meaning, the exact definition."""
    order = {name: i for i, name in enumerate(PLAIN)}
    out = []
    for name, better, meaning, definition in sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0])):
        block = f"**`{name}`** ({better})" + (f" — {meaning}" if meaning else "")
        if definition:
            block += f"\n<br><small>Exact definition: {definition}</small>"
        out.append(block)
    return "\n\n".join(out)


def provenance_markdown(results_dir: Path) -> str:
    """One line per results file: dataset, model, images, size, commit, date."""
    try:
        from colorbench.leaderboard.table import load_documents

        docs = load_documents(results_dir)
    except Exception as e:
        log.warning("cannot read results for provenance: %s", e)
        docs = []
    if not docs:
        return f"No results files in `{results_dir}` yet."
    lines = ["| dataset | model | images | eval size | weights | commit | date |", "|---|---|---|---|---|---|---|"]
    for d in docs:
        git = d.get("git") or {}
        commit = (git.get("commit") or "")[:10] + (" (dirty)" if git.get("dirty") else "")
        lines.append(f"| {d.get('dataset')} | {d.get('model')} | {d.get('n_images', '')} | {d.get('size', '')} | "
                     f"{str(d.get('weights_id', ''))[:12]} | {commit} | {str(d.get('date', ''))[:19]} |")
    return "\n".join(lines)


HOW = """
### How the numbers are produced
1. **One pipeline.** Every prediction — in this page, the CLI, the benchmark and the study — goes through
   `colorbench.colorize`: the photo's lightness L is kept at full resolution, the model sees L resized to
   its input size, and its ab output is upsampled and recombined with the original L.
2. **Evaluation images.** Each dataset item is resized (shorter side to the evaluation size, 256 px by
   default, antialiased) and centre-cropped; the ground-truth colours are that crop.
3. **Metrics** are computed per image and aggregated over the dataset. The ± in each cell is the half-width
   of a **95% percentile bootstrap interval over images** (1000 resamples, fixed seed).
4. **Rows.** `ground_truth` scores the photos themselves (the ceiling); `gray` (ab = 0) and `random`
   (the colours of another photo of the same dataset) are the ECCV16 baselines. A metric that could not be
   computed here (for example, network weights unavailable offline) shows **—** with its reason in the
   results file, never a zero.
5. **Provenance.** Each results file records the model's weights hash, the dataset fingerprint, package
   versions, the git commit and the date (below). Predictions are cached on disk by model, weights and
   dataset, so a rerun gives the same numbers.
6. **The fooled rate** comes from the Turing-test tab: real photo versus the model's colorization of the
   same photo's grayscale, both through the identical encode path, shown for one second; practice pairs and
   participants failing the vigilance pairs are excluded.
"""


def build(ctx: AppContext) -> None:
    """Lay out the About tab inside the current ``gr.Tab``."""
    gr.Markdown("## What the metrics mean\nArrows say which direction is better. The plain meaning comes "
                "first; the exact definition used by the code follows.")
    gr.Markdown(metrics_markdown(metric_rows()), elem_id="about-metrics")
    gr.Markdown(HOW)
    with gr.Accordion("Results files behind the leaderboard", open=False):
        gr.Markdown(provenance_markdown(ctx.results_dir), elem_id="about-provenance")
    gr.Markdown("### Sources\nZhang, Isola, Efros, *Colorful Image Colorization*, ECCV 2016 · Zhang et al., "
                "*Real-Time User-Guided Image Colorization with Learned Deep Priors*, SIGGRAPH 2017 · "
                "Klefbom & Mjöberg; Hwang & Zhou; Gunnam et al. (see each model's card in the Leaderboard tab).")
