"""The run-state vocabulary: stages, states, and the rows of the state store (mft_hpc.rundir.state).

An *element* is one unit of work of a stage (a training member, one task or shard of generation or
evaluation, a collect job), identified by (stage, member, task, element). Each submission of it is an
*attempt*. Slurm's job states map onto ours with ``from_slurm_state``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mft_hpc.errors import UserError

STAGES = ("train", "generate", "evaluate", "collect")
COLLECT_MEMBER = "_run"  # the member column of the collect element (one per run)

# Our own states; Slurm states are mapped onto them by the controller (mft_hpc.slurm.job_states).
PLANNED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED = (
    "planned", "pending", "running", "completed", "failed", "cancelled", "timeout", "skipped")
STATES = (PLANNED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED)
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED, TIMEOUT, SKIPPED})
FAILED_STATES = frozenset({FAILED, CANCELLED, TIMEOUT})


class StateUnreadable(UserError):
    """state.sqlite is corrupt, truncated or not a database."""


class StateBusy(UserError):
    """Another process held state.sqlite's write lock for longer than we wait."""


@dataclass(frozen=True)
class Element:
    id: int
    run: str
    stage: str
    member: str
    task: str
    element: int
    slurm_job_id: str | None
    state: str
    attempts: int
    submitted_at: float | None
    started_at: float | None
    ended_at: float | None
    log_path: str | None      # absolute (resolved against where the run directory is now)
    output_path: str | None
    last_error: str | None
    updated_at: float
    process_host: str | None = None
    process_start: int | None = None

    @property
    def label(self) -> str:
        """``generate/main/mbpp/0``: how ``mft-hpc logs`` and the dashboard name an element."""
        parts = [self.stage, self.member] + ([self.task] if self.task else []) + [str(self.element)]
        return "/".join(parts)


@dataclass(frozen=True)
class Attempt:
    element_id: int
    attempt: int
    slurm_job_id: str | None
    submitted_at: float
    state: str
    ended_at: float | None
    last_error: str | None


@dataclass(frozen=True)
class ElementSpec:
    """What the controller plans before submitting anything."""

    stage: str
    member: str
    task: str = ""
    element: int = 0
    log_path: str | None = None
    output_path: str | None = None


@dataclass(frozen=True)
class LocalProcess:
    """Who runs a local-executor element: a pid is only that process while its start time matches."""

    host: str
    start: int


@dataclass(frozen=True)
class StateChange:
    """A state update for an element, found by its id or its latest Slurm job id."""

    key: int | str
    state: str
    last_error: str | None = None
    at: float | None = None  # when the change was observed; default now


# Slurm job states (squeue/sacct, see mft_hpc.slurm.job_states) -> ours
_FROM_SLURM = {
    PENDING: ("PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESV_DEL_HOLD", "SUSPENDED",
              "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"),
    RUNNING: ("RUNNING", "COMPLETING"),
    COMPLETED: ("COMPLETED",),
    TIMEOUT: ("TIMEOUT", "DEADLINE"),
    CANCELLED: ("CANCELLED", "PREEMPTED", "REVOKED"),
    FAILED: ("FAILED", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "SPECIAL_EXIT"),
}
_SLURM_TO_STATE = {slurm: ours for ours, names in _FROM_SLURM.items() for slurm in names}


def from_slurm_state(slurm_state: str) -> str | None:
    """Our state for a normalized Slurm state (``CANCELLED``, ``OUT_OF_MEMORY``...); None if unknown."""
    return _SLURM_TO_STATE.get(slurm_state.strip().upper())


def last_line(text: str | None) -> str | None:
    """The last non-empty line of an error text: what the dashboard shows."""
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None
