"""``colorbench leaderboard [build|publish|submit|worker]``.

``build`` (the default when no sub-verb is given) turns results JSONs into
tables and plots. ``publish``, ``submit`` and ``worker`` are hooks for modules
written separately; each is imported only when its sub-verb runs:

=========  ===================================  ======================================
sub-verb   module                               called as
=========  ===================================  ======================================
publish    ``colorbench.leaderboard.publish_cli``  ``cli_main("publish", argv) -> int``
submit     ``colorbench.leaderboard.submit_cli``   ``cli_main("submit", argv) -> int``
worker     ``colorbench.leaderboard.submit_cli``   ``cli_main("worker", argv) -> int``
=========  ===================================  ======================================

``argv`` is everything after the sub-verb (``--help`` included), so each module
owns its own argument parser. If the module is not there, a clear
"not available" message is printed and the exit status is 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

HOOKS = {
    "publish": ("colorbench.leaderboard.publish_cli", "publish results to a local folder or a hub dataset"),
    "submit": ("colorbench.leaderboard.submit_cli", "submit a model: safetensors checkpoint, hub model id or predictions zip"),
    "worker": ("colorbench.leaderboard.submit_cli", "process queued leaderboard submissions"),
}


def cmd_build(args: argparse.Namespace) -> int:
    from . import build_leaderboard

    written = build_leaderboard(args.results, args.out or args.results)
    if not written["tables"]:
        print(f"no valid results JSONs under {args.results}/<dataset>/<model>.json", file=sys.stderr)
        return 1
    for kind in ("tables", "plots"):
        for p in written[kind]:
            print(f"wrote {p}")
    return 0


def cmd_hook(args: argparse.Namespace) -> int:
    module_name, _ = HOOKS[args.action]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            print(f"`colorbench leaderboard {args.action}` is not available in this installation "
                  f"({module_name} is not present).", file=sys.stderr)
            return 2
        raise
    entry = getattr(module, "cli_main", None)
    if entry is None:
        print(f"`colorbench leaderboard {args.action}` is not available: {module_name} has no cli_main().",
              file=sys.stderr)
        return 2
    return int(entry(args.action, list(args.rest)) or 0)


def _add_build_args(p: argparse.ArgumentParser, suppress: bool) -> None:
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument("--results", default=d("results"), help="folder of results JSONs (default: results/)")
    p.add_argument("--out", default=d(None), help="output folder (default: the results folder)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("leaderboard", help="build the leaderboard (tables + plots); publish | submit | worker")
    _add_build_args(p, suppress=False)
    p.set_defaults(func=cmd_build, action="build")
    actions = p.add_subparsers(dest="action", required=False, metavar="{build,publish,submit,worker}")
    b = actions.add_parser("build", help="tables (markdown, CSV, HTML) and plots from results JSONs (default)")
    _add_build_args(b, suppress=True)
    b.set_defaults(func=cmd_build)
    for name, (_, help_text) in HOOKS.items():
        # no option prefix of its own: every argument, --help included, goes to the module's parser
        h = actions.add_parser(name, help=help_text, add_help=False, prefix_chars="\x00")
        h.add_argument("rest", nargs="*")
        h.set_defaults(func=cmd_hook)

