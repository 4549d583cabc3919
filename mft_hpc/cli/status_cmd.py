"""`mft-hpc status RUN [--watch]`: the run dashboard, from the state store and the run directory."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.live import Live

from mft_hpc.dashboard import read_run, render, render_plain
from mft_hpc.dashboard.run_path import resolve_run_dir


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("status", help="show a run's dashboard (stages, training, pass@1, failures)",
                              description="Render a run's state. Without a terminal it prints a plain table once.")
    parser.add_argument("run", metavar="RUN", help="run directory (runs/<name>) or run name")
    parser.add_argument("--watch", action="store_true", help="keep refreshing until Ctrl-C (terminals only)")
    parser.add_argument("--interval", type=float, default=2.0, metavar="S", help="refresh interval (default 2 s)")
    parser.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    parser.set_defaults(func=_run)


def _scheduler_refresher(run):
    """Refresh state.sqlite from `.done` markers and Slurm, backing off (2 s → 60 s) while nothing changes."""
    from mft_hpc.controller.operations import refresh_run
    from mft_hpc.slurm import StatusPoller

    poller = StatusPoller()
    next_at = 0.0

    def tick() -> None:
        nonlocal next_at
        if (run / "run.json").is_file() and time.monotonic() >= next_at:
            refresh_run(run, poller)
            next_at = time.monotonic() + poller.next_delay_s

    return tick


def _run(args: argparse.Namespace) -> int:
    run = resolve_run_dir(args.run)
    tick = _scheduler_refresher(run)
    tick()
    if args.plain or not sys.stdout.isatty():
        if args.watch:
            print("mft-hpc: --watch needs a terminal; printing once", file=sys.stderr)
        sys.stdout.write(render_plain(read_run(run)))
        return 0
    console = Console()
    if not args.watch:
        console.print(render(read_run(run)))
        return 0
    try:
        with Live(render(read_run(run)), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(max(args.interval, 0.2))
                tick()
                live.update(render(read_run(run)), refresh=True)
    except KeyboardInterrupt:
        return 0
