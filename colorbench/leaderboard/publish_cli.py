"""``colorbench leaderboard publish``: the command-line face of :mod:`colorbench.leaderboard.publish`."""

from __future__ import annotations

import argparse
import sys
from typing import List

from .publish import HubUnavailable, PublishError, publish


def cli_main(action: str, argv: List[str]) -> int:
    """``colorbench leaderboard publish --to DIR|OWNER/NAME [--results results/] [--private]``."""
    p = argparse.ArgumentParser(prog="colorbench leaderboard publish",
                                description="Publish the leaderboard (parquet tables + dataset card) to a local "
                                            "folder or a Hugging Face Hub dataset.")
    p.add_argument("--to", required=True, help="a folder, or a hub dataset id owner/name (or hf://datasets/owner/name)")
    p.add_argument("--results", default="results", help="results folder (default: results/)")
    p.add_argument("--private", action="store_true", help="create the hub repo as private")
    p.add_argument("-m", "--message", default=None, help="hub commit message")
    args = p.parse_args(argv)
    try:
        where = publish(args.to, args.results, private=args.private, message=args.message)
    except (PublishError, HubUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"published to {where}")
    return 0
