"""Resolve the RUN argument of `status` / `logs`: a run directory, or a run name under ./runs."""

from __future__ import annotations

from pathlib import Path

from mft_hpc.errors import UserError
from mft_hpc.rundir import is_run_dir


def resolve_run_dir(run: str) -> Path:
    for candidate in (Path(run), Path("runs") / run):
        if is_run_dir(candidate):
            return candidate
    raise UserError(f"{run}: not a run directory (expected runs/<name>/ with members/, state.sqlite or config.yaml)")
