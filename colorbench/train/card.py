"""Model cards: one Markdown file beside each shipped weights file."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from ..weights import sha256_file


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def metrics_table(rows: Dict[str, Dict[str, float]]) -> str:
    lines = ["| model | rebalanced AuC | AuC | classifier agreement (top-1, EfficientNet-Lite0) |",
             "|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {_fmt(m.get('auc_rebal'))} | {_fmt(m.get('auc'))} | {_fmt(m.get('agreement'))} |")
    return "\n".join(lines)


def write_card(path: Path, *, name: str, model: str, description: str, paper: str, command: str,
               config: Dict[str, Any], metrics: Optional[Dict[str, Dict[str, float]]] = None,
               data_note: str = "", failures: str = "", extra: str = "",
               train_ids: Optional[Sequence[str]] = None) -> Path:
    """Write ``path`` (``weights/NAME.md``): what the model is, what it saw, how it was trained, how it scores."""
    weights = Path(config["out"])
    digest = sha256_file(weights) if weights.is_file() else "(missing)"
    size_mb = weights.stat().st_size / 1e6 if weights.is_file() else 0.0
    minutes = config.get("seconds", 0) / 60
    parts = [
        f"# {name}",
        "",
        f"Registered model: `{model}`. Weights: `{weights.name}` ({size_mb:.1f} MB, "
        f"{config.get('half') and 'float16' or 'float32'}, sha256 `{digest[:16]}…`, listed in `manifest.json`).",
        "",
        description,
        "",
        f"Reference: {paper}",
        "",
        "## Training",
        "",
        f"- Command: `{command}`",
        f"- Data: `{config['data']}`" + (f" (subset `{config['subset']}`)" if config.get("subset") else "")
        + f": {config.get('n_train')} training images, {config.get('n_val')} held out for validation "
          f"(chosen by a hash of the file name). {data_note}",
        f"- Crops {config['size']}x{config['size']} (random resized crops, flips, small rotations, L-only "
        f"gamma/contrast jitter), batch {config['batch_size']}, {config.get('steps_done')} steps, "
        f"lr {config['lr']} (warm-up, cosine), seed {config['seed']}.",
        f"- Wall time: {minutes:.1f} min on {config.get('threads', 2)} CPU thread(s) of a 2-core machine shared with "
        f"other jobs (load average often above 10), torch {config.get('torch', '')}.",
        f"- Loss curves: `{weights.stem}_loss.csv`, `{weights.stem}_loss.png`; full config `{weights.stem}.json`.",
        "- This is a small CPU training run on a small offline corpus; it is not comparable to models "
        "trained on ImageNet for days.",
    ]
    if metrics:
        parts += ["", "## Results on `builtin` (33 photos, never used for training or model selection)", "",
                  "256x256 evaluation images through `colorbench.pipeline.colorize_batch`; AuC of the ab error "
                  "over t = 0..150 (plain and ECCV16 class-rebalanced), and the fraction of images whose "
                  "EfficientNet-Lite0 top-1 class is unchanged by the colorization.", "",
                  metrics_table(metrics)]
    if failures:
        parts += ["", "## Where it fails", "", failures]
    if extra:
        parts += ["", extra]
    parts += ["", f"_Written {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}._", ""]
    path = Path(path)
    path.write_text("\n".join(parts))
    return path


def load_config(weights_path: Path) -> Dict[str, Any]:
    return json.loads(Path(weights_path).with_suffix("").with_suffix(".json").read_text())


__all__ = ["write_card", "metrics_table", "load_config"]
