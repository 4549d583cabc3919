"""`mft-hpc pack RUN|GENERATIONS_DIR [--out ZIP]` and `mft-hpc pack --check ZIP`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mft_hpc.cli.options import check_output_file
from mft_hpc.errors import UserError
from mft_hpc.submission.check import check_zip
from mft_hpc.submission.pack import default_out, pack
from mft_hpc.submission.source import META_FILE, resolve_source
from mft_hpc.tasks.names import PROBLEM_COUNTS, TASK_NAMES


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser(
        "pack", help="zip a run's generations for submission, or --check a submission zip",
        description="Zip generations_{model}/ (13 files) for the competition after checking names, "
                    "lengths and greedy decoding; or check an existing zip with --check. Exit 2 if refused.")
    parser.add_argument("source", nargs="?", metavar="RUN|GENERATIONS_DIR",
                        help="a run directory (runs/<name>) or a bare generations_{model}/ folder")
    parser.add_argument("--check", metavar="ZIP", help="validate this zip instead of packing")
    parser.add_argument("--out", metavar="ZIP", help="zip to write (default: <run>/collect/generations_{model}.zip)")
    parser.add_argument("--member", help="sweep member to pack (required when the run has several)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="accept a run made with generate.limit; the zip name then says 'partial'")
    parser.add_argument("--assume-greedy", action="store_true",
                        help=f"a bare folder without {META_FILE}: you vouch it was decoded greedily")
    parser.set_defaults(func=_run)


def _summary(checked) -> str:
    full = sum(PROBLEM_COUNTS.values())
    return f"model {checked.model}: {len(checked.counts)}/{len(TASK_NAMES)} tasks, {checked.total}/{full} problems"


def _warn_partial(path: Path) -> None:
    print(f"WARNING: {path} is a PARTIAL submission (a run made with generate.limit).\n"
          "WARNING: it is NOT a valid competition submission; do not upload it.", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    if args.check:
        if args.source or args.out:
            raise UserError("pack --check ZIP takes no RUN/GENERATIONS_DIR and no --out")
        checked = check_zip(args.check, allow_partial=args.allow_partial)
        if checked.partial:
            _warn_partial(Path(args.check))
        print(f"{args.check}: ok ({_summary(checked)}{', PARTIAL' if checked.partial else ''})")
        return 0
    if not args.source:
        raise UserError("pack needs RUN|GENERATIONS_DIR (or --check ZIP)")
    if args.out:
        check_output_file(args.out, "--out")
    source = resolve_source(args.source, member=args.member, assume_greedy=args.assume_greedy)
    # a run's zip goes to its collect/ by default; a bare folder's to the current directory
    collect = Path(args.source) / "collect" if source.folder.parent.name == "generate" else None
    out = Path(args.out) if args.out else default_out(source, collect)
    packed = pack(source, out, allow_partial=args.allow_partial)
    if packed.checked.partial:
        _warn_partial(packed.path)
    print(f"{packed.path}: written and checked ({_summary(packed.checked)}; greedy per {source.decoding_from})")
    return 0
