"""Run directory layout and the atomic-write/`.done` conventions every stage uses."""

from mft_hpc.rundir.atomic import atomic_open, atomic_write_bytes, atomic_write_json, atomic_write_text
from mft_hpc.rundir.done import clear_done, done_info, done_marker, done_problem, has_marker, is_done, mark_done
from mft_hpc.rundir.layout import STAGES, MemberDir, RunDir, is_run_dir

__all__ = [
    "MemberDir",
    "RunDir",
    "STAGES",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "clear_done",
    "done_info",
    "done_marker",
    "done_problem",
    "has_marker",
    "is_done",
    "is_run_dir",
    "mark_done",
]
