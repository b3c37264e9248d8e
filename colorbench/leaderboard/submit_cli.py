"""``colorbench leaderboard submit | worker``: the command-line face of
:mod:`colorbench.leaderboard.submissions`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List

from .submissions import (FAILED, SubmissionRefused, SubmissionStore, WorkerConfig, default_data_dir, run_worker,
                          submit_checkpoint, submit_hub, submit_predictions)


def _submit_parser():
    import argparse

    p = argparse.ArgumentParser(
        prog="colorbench leaderboard submit",
        description="Validate and queue a leaderboard submission: a safetensors checkpoint (--checkpoint + --arch), "
                    "a hub model (--hub-id + --arch) or a zip of predictions (--predictions + --dataset). "
                    "`colorbench leaderboard worker` evaluates the queue.")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--checkpoint", help="a .safetensors file for a registered architecture")
    what.add_argument("--hub-id", help="a hub model id owner/name holding one .safetensors file")
    what.add_argument("--predictions", help="a zip with one PNG per item id of --dataset, at the evaluation size")
    what.add_argument("--list", action="store_true", help="show the queue and exit")
    p.add_argument("--arch", help="architecture (a name from `colorbench list models`)")
    p.add_argument("--revision", help="hub revision (with --hub-id)")
    p.add_argument("--dataset", help="dataset of the predictions (builtin, folder:PATH, ...)")
    p.add_argument("--card", help="model card file (markdown with model_name and license front matter); "
                                  "for --hub-id the repo's README.md is used when omitted")
    p.add_argument("--submitter", help="your name or hub user name")
    p.add_argument("--data-dir", default=None, help="queue and stored files (default: $COLORBENCH_DATA_DIR or space_data/)")
    return p


def _worker_parser():
    import argparse

    p = argparse.ArgumentParser(prog="colorbench leaderboard worker",
                                description="Evaluate pending submissions and write their results JSONs.")
    p.add_argument("--data-dir", default=None, help="queue and stored files (default: $COLORBENCH_DATA_DIR or space_data/)")
    p.add_argument("--results", default=os.environ.get("COLORBENCH_RESULTS_DIR", "results"),
                   help="results folder (default: results/)")
    p.add_argument("--datasets", nargs="+", default=["builtin"], help="datasets checkpoints are evaluated on")
    p.add_argument("--metrics", nargs="+", default=None, help="metric names (default: all registered)")
    p.add_argument("--size", type=int, default=None, help="evaluation side (default: the benchmark's)")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--max-jobs", type=int, default=None, help="stop after this many submissions")
    p.add_argument("--requeue-after", type=float, default=None,
                   help="first put RUNNING submissions older than this many seconds back to PENDING")
    return p


def _print_queue(store: SubmissionStore) -> None:
    rows = [s.public() for s in store.queue.list()]
    if not rows:
        print("the queue is empty")
        return
    for r in rows:
        what = r["arch"] or r["dataset"]
        line = f"#{r['id']:<4} {r['status']:9s} {r['kind']:11s} {r['model']:24s} {what:20s} {r['submitter']:16s} {r['submitted']}"
        print(line + (f"  reason: {r['reason']}" if r["reason"] else ""))


def cli_main(action: str, argv: List[str]) -> int:
    """Entry point of ``colorbench leaderboard submit`` and ``colorbench leaderboard worker``."""
    import sys

    if action == "worker":
        args = _worker_parser().parse_args(argv)
        store = SubmissionStore(Path(args.data_dir) if args.data_dir else default_data_dir())
        cfg = WorkerConfig(results_dir=Path(args.results), datasets=tuple(args.datasets),
                           metrics=tuple(args.metrics) if args.metrics else None, size=args.size, n_boot=args.n_boot)
        done = run_worker(store, cfg, max_jobs=args.max_jobs, requeue_after_s=args.requeue_after)
        for s in done:
            print(f"#{s.id} {s.model_name}: {s.status}" + (f" ({s.reason})" if s.reason else
                                                           "".join(f"\n  wrote {p}" for p in s.results)))
        if not done:
            print("no pending submissions")
        return 1 if any(s.status == FAILED for s in done) else 0
    p = _submit_parser()
    args = p.parse_args(argv)
    store = SubmissionStore(Path(args.data_dir) if args.data_dir else default_data_dir())
    if args.list:
        _print_queue(store)
        return 0
    card = None
    if args.card:
        try:
            card = Path(args.card).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            print(f"refused: cannot read the model card {args.card}: {e}", file=sys.stderr)
            return 2
    try:
        if args.checkpoint or args.hub_id:
            if not args.arch:
                p.error("--arch is required with --checkpoint and --hub-id")
            if args.checkpoint:
                sub = submit_checkpoint(store, Path(args.checkpoint), args.arch, card, args.submitter)
            else:
                sub = submit_hub(store, args.hub_id, args.arch, card, args.submitter, revision=args.revision)
        elif args.predictions:
            if not args.dataset:
                p.error("--dataset is required with --predictions")
            sub = submit_predictions(store, Path(args.predictions), args.dataset, card, args.submitter)
        else:
            p.error("give one of --checkpoint, --hub-id, --predictions or --list")
    except SubmissionRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    print(f"queued as submission #{sub.id} ({sub.model_name}, {sub.kind}); content hash {sub.content_hash[:16]}")
    return 0
