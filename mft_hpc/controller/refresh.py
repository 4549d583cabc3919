"""The status engine: bring state.sqlite up to date from `.done` markers and the scheduler.

One batched `squeue` (+ one `sacct` for ids that left the queue) per refresh for all of a run's
in-flight jobs (mft_hpc.slurm.StatusPoller); which `.done` markers exist is found by listing each
output folder once, and only those are checked: a refresh is linear in the run's elements. Output markers are trusted over the scheduler: an
element whose output is `.done` (and still matches it) is completed whatever Slurm says; a
completed element whose output went missing or changed is failed, with the reason. An id Slurm no
longer knows keeps its last state instead of crashing the refresh. Local-executor elements whose
process is gone (pid + start time) are failed.
"""

from __future__ import annotations

from pathlib import Path

from mft_hpc.controller.local_jobs import process_gone
from mft_hpc.runplan.plan import RunPlan
from mft_hpc.rundir.state import (COMPLETED, FAILED, FAILED_STATES, PLANNED, TERMINAL_STATES, Element,
                                      StateChange, StateStore, from_slurm_state, last_line)
from mft_hpc.slurm import StatusPoller


def log_error_line(element: Element) -> str | None:
    """The last line of the element's stderr log: what the dashboard shows for a failure."""
    if not element.log_path:
        return None
    try:
        text = Path(element.log_path).read_text(errors="replace")[-20000:]
    except OSError:
        return None
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("srun: ")]
    return last_line("\n".join(lines[-5:])) if lines else None


def raised_in_our_code(element: Element) -> bool:
    """True when the element died of a Python exception (a bug or bad input: retrying won't help)."""
    if not element.log_path:
        return False
    try:
        return "Traceback (most recent call last)" in Path(element.log_path).read_text(errors="replace")
    except OSError:
        return False


def in_flight(element: Element) -> bool:
    return bool(element.slurm_job_id) and element.state not in TERMINAL_STATES and element.state != PLANNED


def refresh(plan: RunPlan, store: StateStore, poller: StatusPoller | None = None,
            use_scheduler: bool = True) -> list[Element]:
    elements = store.elements()
    flying = {e.id for e in elements if in_flight(e)}
    slurm_states = {}
    if use_scheduler and flying:
        slurm_states = (poller or StatusPoller()).refresh({e.slurm_job_id for e in elements if e.id in flying})
    keys = [plan.key_of(e) for e in elements]
    marked = plan.marked_keys(keys)  # a marker exists: only those can be done (then it is checked)
    changes = []
    for element, key in zip(elements, keys):
        problem = plan.done_problem(key) if key in marked or element.state == COMPLETED else "not done"
        if problem is None:
            if element.state != COMPLETED:
                changes.append(StateChange(element.id, COMPLETED))
            continue
        if element.id in flying and process_gone(element):
            changes.append(StateChange(element.id, FAILED, f"process gone (pid {element.slurm_job_id})"))
        elif element.id in flying:
            ours = from_slurm_state(slurm_states.get(element.slurm_job_id, ""))
            if ours == COMPLETED:  # the scheduler says done, but the output is not: the stage failed
                changes.append(StateChange(element.id, FAILED,
                                           log_error_line(element) or "job ended without writing its output"))
            elif ours and ours != element.state:
                error = log_error_line(element) if ours in FAILED_STATES else None
                if ours in FAILED_STATES:
                    error = f"{slurm_states[element.slurm_job_id]}: {error}" if error else slurm_states[element.slurm_job_id]
                changes.append(StateChange(element.id, ours, error))
        elif element.state == COMPLETED:  # output deleted, truncated or remade from other inputs
            changes.append(StateChange(element.id, FAILED, problem))
    if changes:
        store.update_states(changes)
        elements = store.elements()
    return elements
