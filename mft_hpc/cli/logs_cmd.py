"""`mft-hpc logs RUN ELEMENT [-f]`: print (or follow) the log of one element, found in the state store."""

from __future__ import annotations

import argparse
import codecs
import sys
import time
from collections import deque
from pathlib import Path

from mft_hpc.cli.options import at_least
from mft_hpc.dashboard.run_path import resolve_run_dir
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.state import TERMINAL_STATES, StateStore


def register(verbs: argparse._SubParsersAction) -> None:
    parser = verbs.add_parser("logs", help="print or follow one element's log",
                              description="ELEMENT is a Slurm job id (123_4), a label "
                                          "(generate/main/mbpp/0) or the element's id in the state store.")
    parser.add_argument("run", metavar="RUN", help="run directory (runs/<name>) or run name")
    parser.add_argument("element", metavar="ELEMENT")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the element ends")
    parser.add_argument("-n", "--lines", type=at_least(0), default=50, help="last N lines (default 50; 0 = all)")
    parser.set_defaults(func=_run)


def _log_path(run: Path, key: str) -> tuple[StateStore, int, Path]:
    store = StateStore.open_reader(RunDir(run).state_db)
    if store is None:
        if (run / "run.json").is_file():
            raise UserError(f"{RunDir(run).state_db}: missing; `mft-hpc repair {run}` rebuilds it")
        raise UserError(f"{run}: no state.sqlite yet: nothing has been submitted")
    try:
        element = store.element(key)
        if element is None:
            labels = ", ".join(e.label for e in store.elements()[:8])
            raise UserError(f"{run}: no element {key!r} (by Slurm job id, label or id); e.g. {labels or 'none'}")
        if not element.log_path:
            raise UserError(f"{element.label}: no log recorded yet (state {element.state})")
    except BaseException:
        store.close()
        raise
    return store, element.id, Path(element.log_path)


def _run(args: argparse.Namespace) -> int:
    store, element_id, path = _log_path(resolve_run_dir(args.run), args.element)
    with store:
        if not path.is_file() and not args.follow:
            raise UserError(f"{path}: log not written yet (state {store.element(element_id).state})")
        offset = 0
        if path.is_file():
            with path.open("rb") as handle:
                lines = deque(handle, maxlen=args.lines or None)
                offset = handle.tell()
            sys.stdout.write(b"".join(lines).decode(errors="replace"))
            sys.stdout.flush()
        if not args.follow:
            return 0
        # bytes may end mid-character: decode incrementally
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            while True:
                ended = store.element(element_id).state in TERMINAL_STATES
                if path.is_file():
                    with path.open("rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read()
                        offset = handle.tell()
                    if chunk:
                        sys.stdout.write(decoder.decode(chunk))
                        sys.stdout.flush()
                        continue
                if ended:
                    return 0
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
