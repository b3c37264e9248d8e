"""``colorbench study build | stats | export``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

__all__ = ["register", "default_data_dir", "stimuli_root"]


def default_data_dir() -> Path:
    """The app's data directory: ``COLORBENCH_DATA_DIR`` or ``<repo>/space_data`` (as the app)."""
    return Path(os.environ.get("COLORBENCH_DATA_DIR", Path(__file__).resolve().parents[2] / "space_data"))


def stimuli_root(data_dir: Path) -> Path:
    """Where built studies live inside a data directory (the app looks there too)."""
    return Path(data_dir) / "study_stimuli"


def _config(path: str | None):
    from .config import REPO_DEFAULT_CONFIG, load_config

    return load_config(path or os.environ.get("COLORBENCH_STUDY_CONFIG") or REPO_DEFAULT_CONFIG)


def cmd_build(args: argparse.Namespace) -> int:
    from .stimuli import build_stimuli, load_built

    config = _config(args.config)
    root = Path(args.out) if args.out else stimuli_root(Path(args.data_dir or default_data_dir()))
    try:
        path = build_stimuli(config, root, force=args.force)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    built = load_built(path)
    print(f"study {config.name}: {len(built.images)} images, models {', '.join(built.models)}"
          f" (+ vigilance {built.vigilance_model}) -> {path}")
    for name, why in built.manifest.get("skipped", {}).items():
        print(f"  left out {name}: {why}")
    return 0


def _db(args: argparse.Namespace) -> Path:
    return Path(args.db) if args.db else Path(args.data_dir or default_data_dir()) / "study.sqlite"


def cmd_stats(args: argparse.Namespace) -> int:
    from . import stats
    from .store import Store

    db = _db(args)
    if not db.is_file():
        print(f"error: no study database at {db}", file=sys.stderr)
        return 2
    store = Store(db)
    config = _config(args.config)
    df = stats.judgments_frame(store, args.study)
    if df.empty:
        print("no judgments yet")
        return 1
    res = stats.analyze(df, config.vigilance_max_error_rate, args.bootstrap or config.bootstrap_samples,
                        config.seed, compare=args.compare)
    print(f"{'model':24s} {'fooled %':>9s} {'± se':>7s} {'participants':>13s} {'judgments':>10s}")
    for model, r in sorted(res["fooled"].items(), key=lambda kv: -kv[1]["rate"]):
        se = f"{r['se']:.1f}" if r["se"] is not None else "-"
        print(f"{model:24s} {r['rate']:9.1f} {se:>7s} {r['n_participants']:13d} {r['n_judgments']:10d}")
    v = res["vigilance"]
    acc = f"{v['accuracy']:.1f}%" if v["accuracy"] is not None else "-"
    print(f"vigilance: {v['n_pairs']} pairs, fake spotted {acc}; {v['n_excluded']} of {v['n_participants']} "
          f"participants excluded; {v['n_fast_flagged']} answers flagged fast")
    for c in res["comparisons"]:
        print(f"{c['a']} - {c['b']}: {c['diff']:+.1f} points (95% CI {c['ci95'][0]:+.1f}..{c['ci95'][1]:+.1f}), "
              f"p = {c['p_value']:.3f}")
    out = Path(args.out)
    paths = stats.export(df, out)
    per_image = stats.per_image(df, config.vigilance_max_error_rate)
    per_image.to_csv(out / "per_image.csv", index=False)
    (out / "stats.json").write_text(json.dumps(res, indent=2) + "\n")
    fooled = stats.write_fooled(res["fooled"], Path(args.fooled))
    print("wrote " + ", ".join(str(p) for p in [*paths, out / "per_image.csv", out / "stats.json", fooled]))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import stats
    from .store import Store

    db = _db(args)
    if not db.is_file():
        print(f"error: no study database at {db}", file=sys.stderr)
        return 2
    paths = stats.export(stats.judgments_frame(Store(db), args.study), Path(args.out))
    print("wrote " + ", ".join(map(str, paths)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="the colorization Turing test: build stimuli, statistics, export")
    verbs = p.add_subparsers(dest="study_verb", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--config", default=None, help="study config (.json/.toml/.yaml); default: "
                                                      "$COLORBENCH_STUDY_CONFIG or studies/default.json")
        q.add_argument("--data-dir", default=None, help="the app's data directory (default: $COLORBENCH_DATA_DIR)")

    q = verbs.add_parser("build", help="build a study's stimuli (real + fakes, same path) from its config")
    common(q)
    q.add_argument("--out", default=None, help="folder for built studies (default: DATA_DIR/study_stimuli)")
    q.add_argument("--force", action="store_true", help="rebuild even if already built")
    q.set_defaults(func=cmd_build)

    q = verbs.add_parser("stats", help="fooled rates with bootstrap SE, vigilance, comparisons; CSV/parquet export")
    common(q)
    q.add_argument("--db", default=None, help="study database (default: DATA_DIR/study.sqlite)")
    q.add_argument("--study", default=None, help="study id (default: every study in the database)")
    q.add_argument("--out", default="results/study", help="folder for the exports")
    q.add_argument("--fooled", default="results/study/fooled.json", help="fooled-rate JSON for the leaderboard")
    q.add_argument("--compare", nargs=2, default=None, metavar=("MODEL_A", "MODEL_B"),
                   help="bootstrap test between two models (default: every pair)")
    q.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples (default: from the config)")
    q.set_defaults(func=cmd_stats)

    q = verbs.add_parser("export", help="export every judgment as CSV and parquet")
    common(q)
    q.add_argument("--db", default=None, help="study database (default: DATA_DIR/study.sqlite)")
    q.add_argument("--study", default=None, help="study id (default: every study)")
    q.add_argument("--out", default="results/study", help="output folder")
    q.set_defaults(func=cmd_export)
