"""The training loop: seeded, resumable, with loss curves.

A model is trainable when it has ``training_loss(L, ab, **loss_kwargs) -> (loss, logs)``;
models needing more than one optimizer (the GAN) provide
``configure_optimizers(lr, weight_decay) -> list`` and
``train_step(L, ab, optimizers, **loss_kwargs) -> logs`` instead.

Determinism: batch ``k`` is a pure function of ``(seed, k)`` (see
:class:`~colorbench.train.data.ImagePool`), the torch RNG (dropout) is reseeded
with ``(seed, k)`` before each step, and the learning rate is a function of ``k``.
Checkpoints (safetensors, never pickle) hold the model, every optimizer state and
the loss history, so ``resume`` continues exactly where the run stopped.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..weights import add_to_manifest, save_safetensors

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a run depends on (saved as JSON beside the weights).

    Attributes:
        model: registry name.
        data: ``builtin`` | ``folder:PATH`` | a hosted dataset name.
        size: side of the square training crops.
        balance: sampling share per corpus category (``manifest.csv``), e.g. ``{"scene": 0.4, ...}``.
        subset: optional image filter, ``hue:blue`` | ``hue:yellow`` | ``hue:green`` (mean Lab hue).
        init: weights file to start from (safetensors), e.g. a previous stage.
        freeze_encoder: keep ``model.encoder`` frozen until ``unfreeze_at`` (-1: always).
        time_limit: stop (and save) after this many seconds of training; 0 = none.
        half: store the shipped weights as float16.
    """

    model: str
    data: str = "folder:data/corpus/images"
    out: str = "weights/model.safetensors"
    size: int = 224
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    min_lr_frac: float = 0.05
    seed: int = 0
    ckpt_every: int = 200
    val_every: int = 200
    holdout: float = 0.1
    subset: Optional[str] = None
    init: Optional[str] = None
    freeze_encoder: bool = False
    unfreeze_at: int = -1
    unfreeze_from: int = 5
    encoder_lr_mult: float = 0.1
    threads: int = 2
    time_limit: float = 0.0
    half: bool = False
    balance: Optional[Dict[str, float]] = None
    model_kwargs: Dict[str, Any] = field(default_factory=dict)
    loss_kwargs: Dict[str, Any] = field(default_factory=dict)
    run_dir: Optional[str] = None

    @property
    def name(self) -> str:
        return Path(self.out).name.split(".")[0]

    @property
    def runs(self) -> Path:
        return Path(self.run_dir or Path("runs") / self.name)

    @property
    def checkpoint_path(self) -> Path:
        return self.runs / "checkpoint.safetensors"


@dataclass
class TrainResult:
    model: nn.Module
    history: List[Dict[str, float]]
    steps_done: int
    seconds: float
    out: Optional[Path]
    n_train: int
    n_val: int
    train_ids: List[str]


# -- learning-rate schedule -----------------------------------------------------
def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_frac``; a pure function of ``step``."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def _set_lr(opts: List[torch.optim.Optimizer], f: float) -> None:
    for opt in opts:
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * f


def default_optimizers(model: nn.Module, cfg: TrainConfig) -> List[torch.optim.Optimizer]:
    if hasattr(model, "configure_optimizers"):
        opts = model.configure_optimizers(cfg.lr, cfg.weight_decay)
    else:
        enc = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        groups = [{"params": rest, "base_lr": cfg.lr}]
        if enc:
            groups.append({"params": enc, "base_lr": cfg.lr * cfg.encoder_lr_mult})
        opts = [torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)]
    for opt in opts:
        for g in opt.param_groups:
            g.setdefault("base_lr", g["lr"])
    return opts


def apply_freezing(model: nn.Module, cfg: TrainConfig, step: int) -> None:
    if not cfg.freeze_encoder or not hasattr(model, "freeze_encoder"):
        return
    if cfg.unfreeze_at >= 0 and step >= cfg.unfreeze_at:
        model.freeze_encoder(trainable_from=cfg.unfreeze_from)
    else:
        model.freeze_encoder(None)


def default_train_step(model: nn.Module, L: torch.Tensor, ab: torch.Tensor, opts: List[torch.optim.Optimizer],
                       **loss_kwargs: Any) -> Dict[str, float]:
    if hasattr(model, "train_step"):
        return model.train_step(L, ab, opts, **loss_kwargs)
    loss, logs = model.training_loss(L, ab, **loss_kwargs)
    for opt in opts:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in opts:
        opt.step()
    return {"loss": float(loss.detach()), **logs}


# -- checkpoints (safetensors only) -------------------------------------------------
def save_checkpoint(path: Path, model: nn.Module, opts: List[torch.optim.Optimizer], step: int,
                    history: List[Dict[str, float]], seconds: float) -> None:
    tensors: Dict[str, torch.Tensor] = {f"model.{k}": v for k, v in model.state_dict().items()}
    groups = []
    for j, opt in enumerate(opts):
        sd = opt.state_dict()
        for pid, st in sd["state"].items():
            for key, val in st.items():
                t = val if torch.is_tensor(val) else torch.tensor(val)
                tensors[f"opt{j}.{pid}.{key}"] = t
        groups.append(sd["param_groups"])
    meta = {"step": str(step), "param_groups": json.dumps(groups), "history": json.dumps(history),
            "seconds": repr(seconds)}
    save_safetensors(tensors, path, metadata=meta)


def load_checkpoint(path: Path, model: nn.Module, opts: List[torch.optim.Optimizer]
                    ) -> Tuple[int, List[Dict[str, float]], float]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    groups = json.loads(meta["param_groups"])
    for j, opt in enumerate(opts):
        state: Dict[int, Dict[str, torch.Tensor]] = {}
        prefix = f"opt{j}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                pid, key = k[len(prefix):].split(".", 1)
                state.setdefault(int(pid), {})[key] = v
        opt.load_state_dict({"state": state, "param_groups": groups[j]})
    return int(meta["step"]), json.loads(meta["history"]), float(meta["seconds"])


# -- curves -------------------------------------------------------------------------
def write_curves(history: List[Dict[str, float]], csv_path: Path, png_path: Optional[Path] = None,
                 title: str = "") -> None:
    """Loss history -> CSV (one row per logged step) and a PNG plot (train and validation loss)."""
    if not history:
        return
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow(row)
    if png_path is None:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    tr = [(r["step"], r["loss"]) for r in history if "loss" in r]
    if tr:
        xs, ys = zip(*tr)
        k = max(1, len(ys) // 50)
        sm = [sum(ys[max(0, i - k):i + 1]) / len(ys[max(0, i - k):i + 1]) for i in range(len(ys))]
        ax.plot(xs, ys, color="0.8", lw=0.7, label="train (per step)")
        ax.plot(xs, sm, color="C0", lw=1.5, label="train (running mean)")
    va = [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]
    if va:
        xs, ys = zip(*va)
        ax.plot(xs, ys, "o-", color="C3", label="validation (held-out photos)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


# -- the loop -------------------------------------------------------------------------
@torch.no_grad()
def validate(model: nn.Module, batches, loss_kwargs: Dict[str, Any]) -> float:
    was = model.training
    model.eval()
    tot, n = 0.0, 0
    for L, ab in batches:
        if hasattr(model, "validation_loss"):
            loss = model.validation_loss(L, ab)
        else:
            loss, _ = model.training_loss(L, ab, **loss_kwargs)
        tot += float(loss) * L.shape[0]
        n += L.shape[0]
    model.train(was)
    return tot / max(1, n)


def build_pools(cfg: TrainConfig):
    from .data import ImagePool, load_images, mean_hue_deg, split_holdout

    images, ids = load_images(cfg.data)
    if cfg.subset:
        kind, _, value = cfg.subset.partition(":")
        if kind != "hue":
            raise ValueError(f"unknown subset {cfg.subset!r}; use hue:blue|yellow|green")
        keep = [i for i, im in enumerate(images) if hue_class(mean_hue_deg(im)) == value]
        if not keep:
            raise ValueError(f"no image of {cfg.data} has mean hue {value}")
        images, ids = [images[i] for i in keep], [ids[i] for i in keep]
    tr, va = split_holdout(ids, cfg.holdout)
    weights = category_weights([ids[i] for i in tr], cfg.data, cfg.balance)
    train_pool = ImagePool([images[i] for i in tr], [ids[i] for i in tr], cfg.size, seed=cfg.seed, weights=weights)
    val_pool = ImagePool([images[i] for i in va], [ids[i] for i in va], cfg.size, seed=cfg.seed) if va else None
    return train_pool, val_pool


def category_weights(ids: List[str], data: str, balance: Optional[Dict[str, float]]) -> Optional[List[float]]:
    """Sampling weights giving each corpus category (``manifest.csv`` beside the image folder) its share."""
    if not balance or not data.startswith("folder:"):
        return None
    manifest = Path(data[len("folder:"):]).parent / "manifest.csv"
    if not manifest.is_file():
        return None
    with open(manifest, newline="") as f:
        cat = {Path(r["file"]).name: r.get("category", "") for r in csv.DictReader(f)}
    cats = [cat.get(Path(i).name, "") for i in ids]
    counts = {c: cats.count(c) for c in set(cats)}
    share = {c: balance.get(c, 0.0) for c in counts}
    if sum(share.values()) <= 0:
        return None
    return [share[c] / counts[c] if share[c] > 0 else 1e-3 / counts[c] for c in cats]


#: hue bands (degrees of the Lab hue angle atan2(b, a)) of the biased-ensemble subsets
HUE_BANDS = {"yellow": (45.0, 110.0), "green": (110.0, 200.0), "blue": (200.0, 300.0)}


def hue_class(h: Optional[float]) -> Optional[str]:
    if h is None:
        return None
    for name, (lo, hi) in HUE_BANDS.items():
        if lo <= h < hi:
            return name
    return None


def train(cfg: TrainConfig, resume: bool = False, pools=None, model: Optional[nn.Module] = None,
          write_outputs: bool = True, stop_after: Optional[int] = None) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data``; writes weights, manifest entry, config JSON and curves.

    Args:
        resume: continue from ``cfg.checkpoint_path`` if it exists.
        pools: ``(train_pool, val_pool)`` to use instead of loading ``cfg.data``.
        model: a model instance to train instead of creating ``cfg.model``.
        write_outputs: write checkpoints, weights, manifest entry and curves.
        stop_after: stop (checkpointed, as if interrupted) after this step; the
            schedule still follows ``cfg.steps``. No weights are shipped then.
    """
    from tqdm import tqdm

    from ..models import create_model
    from ..weights import load_state_dict

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    train_pool, val_pool = pools if pools is not None else build_pools(cfg)
    if model is None:
        kw = dict(cfg.model_kwargs)
        if cfg.freeze_encoder or "encoder_pretrained" in kw:
            kw.setdefault("encoder_pretrained", True)
        model = create_model(cfg.model, pretrained=False, **kw)
    if cfg.init:
        model.load_state_dict({k: v.float() for k, v in load_state_dict(cfg.init).items()}, strict=True)
    model.train()
    opts = default_optimizers(model, cfg)
    step, history, seconds = 0, [], 0.0
    if resume and cfg.checkpoint_path.is_file():
        step, history, seconds = load_checkpoint(cfg.checkpoint_path, model, opts)
        log.info("resumed %s at step %d", cfg.checkpoint_path, step)
    val_batches = val_pool.fixed_batches(cfg.batch_size) if val_pool is not None else None
    t0 = time.time() - seconds
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {cfg.name}", unit="step", mininterval=5,
               disable=not write_outputs)
    while step < cfg.steps:
        apply_freezing(model, cfg, step)
        _set_lr(opts, lr_factor(step, cfg))
        L, ab = train_pool.sample(step, cfg.batch_size)
        torch.manual_seed(cfg.seed * 7919 + step)
        logs = default_train_step(model, L, ab, opts, **cfg.loss_kwargs)
        step += 1
        row = {"step": step, "lr": opts[0].param_groups[0]["lr"], "seconds": round(time.time() - t0, 2), **logs}
        if val_batches and (step % cfg.val_every == 0 or step == cfg.steps):
            row["val_loss"] = validate(model, val_batches, cfg.loss_kwargs)
            bar.set_postfix(val=f"{row['val_loss']:.4f}")
        history.append(row)
        bar.update(1)
        out_of_time = cfg.time_limit and time.time() - t0 > cfg.time_limit
        interrupted = stop_after is not None and step >= stop_after
        if write_outputs and (step % cfg.ckpt_every == 0 or step == cfg.steps or out_of_time or interrupted):
            save_checkpoint(cfg.checkpoint_path, model, opts, step, history, time.time() - t0)
            write_curves(history, cfg.runs / "loss.csv")
        if out_of_time:
            log.warning("time limit reached at step %d", step)
            break
        if interrupted:
            bar.close()
            model.eval()
            return TrainResult(model, history, step, time.time() - t0, None, len(train_pool),
                               len(val_pool) if val_pool else 0, train_pool.ids)
    bar.close()
    seconds = time.time() - t0
    model.eval()
    out = None
    if write_outputs:
        out = save_weights(model, cfg, history, seconds, step, train_pool, val_pool)
    return TrainResult(model, history, step, seconds, out, len(train_pool), len(val_pool) if val_pool else 0,
                       train_pool.ids)


def save_weights(model: nn.Module, cfg: TrainConfig, history, seconds: float, step: int, train_pool,
                 val_pool) -> Path:
    out = Path(cfg.out)
    sd = {k: (v.half() if cfg.half and v.is_floating_point() else v) for k, v in model.state_dict().items()}
    meta = {"model": cfg.model, "steps": str(step), "format": "float16" if cfg.half else "float32"}
    save_safetensors(sd, out, metadata=meta)
    stem = out.with_suffix("")
    config = dataclasses.asdict(cfg)
    config.update(steps_done=step, seconds=round(seconds, 1), n_train=len(train_pool),
                  n_val=len(val_pool) if val_pool else 0, torch=torch.__version__)
    Path(str(stem) + ".json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_curves(history, Path(str(stem) + "_loss.csv"), Path(str(stem) + "_loss.png"),
                 title=f"{cfg.name}: {cfg.model} on {cfg.data}")
    add_to_manifest(out, model=cfg.model, steps=step, seconds=round(seconds, 1), data=cfg.data,
                    dtype="float16" if cfg.half else "float32", kwargs=cfg.model_kwargs)
    return out
