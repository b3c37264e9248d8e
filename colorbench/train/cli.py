"""``colorbench train MODEL ...``: train a registered model and ship its weights with a card.

Cheap to import (no torch at module level).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def _kv(items):
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from .loop import TrainConfig, train

    out = args.out or f"weights/{args.model}.safetensors"
    cfg = TrainConfig(model=args.model, data=args.data, out=out, size=args.size, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, warmup=args.warmup,
                      seed=args.seed, ckpt_every=args.ckpt_every, val_every=args.val_every, holdout=args.holdout,
                      subset=args.subset, init=args.init, freeze_encoder=args.freeze_encoder,
                      unfreeze_at=args.unfreeze_at, unfreeze_from=args.unfreeze_from, threads=args.threads,
                      time_limit=args.time_limit, half=args.half, model_kwargs=_kv(args.model_kw),
                      loss_kwargs=_kv(args.loss_kw), run_dir=args.run_dir,
                      balance=json.loads(args.balance) if args.balance else None)
    if args.data == "builtin":
        print("warning: `builtin` is the evaluation set; a model trained on it cannot be evaluated on it",
              file=sys.stderr)
    result = train(cfg, resume=args.resume)
    print(f"trained {cfg.model}: {result.steps_done} steps in {result.seconds / 60:.1f} min -> {result.out}")
    if args.no_card:
        return 0
    from ..models import model_info
    from .card import load_config, write_card

    metrics = None
    if not args.no_eval and args.data != "builtin":
        from .evaluate import evaluate

        metrics = evaluate(["gray", result.model], names=["gray", cfg.name])
        for k, v in metrics.items():
            print(f"{k:28s} auc_rebal {v['auc_rebal']:.4f}  auc {v['auc']:.4f}  agreement {v['agreement']:.3f}")
    info = model_info(cfg.model)
    command = "colorbench train " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 2 else ""
    write_card(Path(out).with_suffix("").with_suffix(".md"), name=cfg.name, model=cfg.model,
               description=info.get("description", ""), paper=info.get("paper", ""), command=command,
               config=load_config(Path(out)), metrics=metrics)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model and write weights, curves and a model card",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="registered model name (see `colorbench list models`)")
    p.add_argument("--data", default="folder:data/corpus/images", help="builtin | folder:PATH | hosted dataset")
    p.add_argument("--size", type=int, default=224, help="side of the square training crops")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--out", default=None, help="weights file (default weights/MODEL.safetensors)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--run-dir", default=None, help="checkpoints and live curves (default runs/NAME)")
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--val-every", type=int, default=200)
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of images held out for validation")
    p.add_argument("--subset", default=None, help="hue:blue | hue:yellow | hue:green (mean Lab hue of the image)")
    p.add_argument("--balance", default=None, help='sampling share per corpus category, JSON, e.g. '
                   '\'{"scene": 0.4, "landscape": 0.25, "object": 0.35}\'')
    p.add_argument("--init", default=None, help="start from these weights (safetensors)")
    p.add_argument("--freeze-encoder", action="store_true", help="freeze a pretrained encoder")
    p.add_argument("--unfreeze-at", type=int, default=-1, help="step at which to unfreeze the last encoder blocks")
    p.add_argument("--unfreeze-from", type=int, default=5, help="first encoder block to unfreeze")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=0.0, help="stop after this many seconds (0: none)")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument("--model-kw", action="append", metavar="KEY=VALUE", help="model constructor argument (JSON value)")
    p.add_argument("--loss-kw", action="append", metavar="KEY=VALUE", help="training_loss argument (JSON value)")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation on builtin")
    p.add_argument("--no-card", action="store_true", help="do not write the model card")
    p.set_defaults(func=cmd_train)
