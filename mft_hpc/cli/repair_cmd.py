"""`mft-hpc repair RUN`: rebuild a broken or missing state.sqlite / run.json from the run directory."""

from __future__ import annotations

import argparse
from collections import Counter


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "repair", help="rebuild a run's state.sqlite (and run.json) from its files, logs and Slurm accounting",
        description="Moves state.sqlite (and an unreadable run.json) aside as *.broken-<time>, never deleting "
                    "them, then rebuilds them from the members' configs, the `.done` markers, the job folders "
                    "under logs/ and Slurm accounting.")
    parser.add_argument("run", metavar="RUN", help="run directory (runs/<name>)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mft_hpc.controller.repair import repair

    report = repair(args.run)
    for path in report.moved:
        print(f"moved aside: {path}")
    if report.rebuilt_run_file:
        print("rebuilt run.json from the members' configs")
    for note in report.notes:
        print(f"note: {note}")
    counts = Counter(report.states.values())
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"rebuilt state.sqlite: {len(report.states)} elements ({summary})")
    return 0
