"""`mft-hpc status RUN [--watch]`: the run dashboard, from the state store and the run directory."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.live import Live

from mft_hpc.cli.options import positive_float
from mft_hpc.dashboard import read_run, render, render_plain
from mft_hpc.dashboard.run_path import resolve_run_dir
from mft_hpc.errors import UserError


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("status", help="show a run's dashboard (stages, training, pass@1, failures)",
                              description="Render a run's state. Without a terminal it prints a plain table once.")
    parser.add_argument("run", metavar="RUN", help="run directory (runs/<name>) or run name")
    parser.add_argument("--watch", action="store_true", help="keep refreshing until Ctrl-C (terminals only)")
    parser.add_argument("--interval", type=positive_float, default=2.0, metavar="S",
                        help="refresh interval (default 2 s)")
    parser.add_argument("--plain", action="store_true", help="plain text even on a terminal")
    parser.add_argument("--verify", action="store_true",
                        help="re-hash every finished output against its .done marker (default: size + mtime)")
    parser.set_defaults(func=_run)


def _warner():
    """Print each distinct problem once (a watch loop meets the same one every refresh)."""
    said: set[str] = set()

    def warn(message: str) -> None:
        if message not in said:
            said.add(message)
            print(f"mft-hpc: warning: {message}", file=sys.stderr, flush=True)

    return warn


def _scheduler_refresher(run, warn, verify: bool = False):
    """Refresh state.sqlite from `.done` markers and Slurm, backing off (2 s → 60 s) while nothing changes.

    A refresh never blocks the dashboard: a store locked by another command is left for the next
    refresh; a broken or missing one is reported once and the dashboard shows the output files.
    """
    from mft_hpc.controller.operations import refresh_run
    from mft_hpc.rundir.state import StateBusy
    from mft_hpc.slurm import StatusPoller

    poller = StatusPoller()
    next_at = 0.0

    def tick() -> None:
        nonlocal next_at, verify
        if (run / "run.json").exists() and time.monotonic() >= next_at:
            next_at = time.monotonic() + poller.next_delay_s
            try:
                refresh_run(run, poller, lock_wait_s=0.0, verify=verify)
                verify = False  # hashing everything once is what was asked; later refreshes stay cheap
            except StateBusy:
                warn(f"{run / 'state.sqlite'}: another mft-hpc command is writing it; showing the last recorded state")
            except UserError as err:
                warn(f"{err}; showing the output files")

    return tick


def _read(run, warn):
    view = read_run(run)
    if view.state_problem:
        warn(f"{view.state_problem}; showing the output files")
    return view


def _run(args: argparse.Namespace) -> int:
    run = resolve_run_dir(args.run)
    warn = _warner()
    tick = _scheduler_refresher(run, warn, args.verify)
    tick()
    if args.plain or not sys.stdout.isatty():
        if args.watch:
            print("mft-hpc: --watch needs a terminal; printing once", file=sys.stderr)
        sys.stdout.write(render_plain(_read(run, warn)))
        return 0
    console = Console()
    if not args.watch:
        console.print(render(_read(run, warn)))
        return 0
    try:
        with Live(render(_read(run, warn)), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(max(args.interval, 0.2))
                tick()
                live.update(render(_read(run, warn)), refresh=True)
    except KeyboardInterrupt:
        return 0
