"""`mft-hpc report RUN [--out FILE]`: the run's self-contained HTML report and its JSON numbers."""

from __future__ import annotations

import argparse

from mft_hpc.dashboard.run_path import resolve_run_dir


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "report", help="write a run's HTML report (training curves, pass@1, timeline, cost, submission)",
        description="Write one self-contained HTML page about a run (no network needed to view it) and the "
                    "same numbers as JSON beside it. Under Slurm, times and cost come from sacct.")
    parser.add_argument("run", metavar="RUN", help="run directory (runs/<name>) or run name")
    parser.add_argument("--out", metavar="FILE",
                        help="HTML file to write (default RUN/collect/report.html; the JSON goes beside it)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mft_hpc.report import write_report

    html_path, json_path = write_report(resolve_run_dir(args.run), args.out)
    print(f"report: {html_path}\nnumbers: {json_path}")
    return 0
