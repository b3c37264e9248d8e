"""The ``colorbench`` command: one subcommand per verb.

Each verb lives in its own module exposing ``register(subparsers)``, which adds
its parser and sets ``func``; this file only assembles them. Verb modules must be
cheap to import (no torch at module level).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import List, Optional

VERB_MODULES = [
    "colorbench.cli",  # colorize, list
    "colorbench.bench.cli",  # bench
    "colorbench.leaderboard.cli",  # leaderboard build | publish | submit | worker
    "colorbench.train.cli",  # train
    "colorbench.study.cli",  # study build | stats | export
]


def _iter_images(inputs: List[str]):
    from .data import IMAGE_SUFFIXES

    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            yield from (q for q in sorted(p.rglob("*")) if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield p


def cmd_colorize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .io import ImageError, encode_png
    from .pipeline import colorize, get_model
    from .weights import WeightsCorrupted, WeightsUnavailable

    try:
        model = get_model(args.model, pretrained=args.weights or True)
    except (WeightsUnavailable, WeightsCorrupted, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.output)
    files = list(_iter_images(args.inputs))
    single_file_out = len(files) == 1 and out.suffix.lower() == ".png"
    if not single_file_out:
        out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in tqdm(files, desc=f"colorize [{args.model}]", unit="img", disable=not sys.stderr.isatty()):
        try:
            rgb = colorize(path, model, T=args.temperature, size=args.size)
        except (ImageError, OSError) as e:
            failed += 1
            print(f"skipped {path}: {e}", file=sys.stderr)
            continue
        dest = out if single_file_out else out / (path.stem + f"_{args.model}.png")
        dest.write_bytes(encode_png(rgb))
    done = len(files) - failed
    print(f"{done} colorized, {failed} failed -> {out}")
    return 1 if failed or not files else 0


def cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from .models import list_models, model_info

        for name in list_models():
            info = model_info(name)
            print(f"{name:24s} {info.get('kind', ''):15s} {info.get('paper', '')}")
    elif args.what == "metrics":
        from .metrics import METRICS

        for name in METRICS.names():
            hib = METRICS.meta(name).get("higher_is_better")
            print(f"{name:16s} {'higher' if hib else 'lower'} is better")
    else:
        from .data import list_datasets

        print("\n".join(list_datasets()))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("colorize", help="colorize image files or folders")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument("-o", "--output", required=True, help="output folder (or a .png path for one input)")
    p.add_argument("-m", "--model", default=None, help="model name (see `colorbench list models`)")
    p.add_argument("--weights", default=None, help="weights file (default: published or shipped weights)")
    p.add_argument("-T", "--temperature", type=float, default=None, help="annealed-mean temperature")
    p.add_argument("--size", type=int, default=None, help="side the model runs at")
    p.set_defaults(func=cmd_colorize)
    p = sub.add_parser("list", help="list models, metrics or datasets")
    p.add_argument("what", choices=["models", "metrics", "datasets"])
    p.set_defaults(func=cmd_list)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colorbench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="verb", required=True)
    for mod in VERB_MODULES:
        try:
            module = sys.modules[__name__] if mod == __name__ or mod == "colorbench.cli" else importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith(mod):
                continue  # verb not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "model", "unset") is None and args.verb == "colorize":
        from .models import DEFAULT_MODEL

        args.model = DEFAULT_MODEL
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
