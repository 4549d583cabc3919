"""Batched job states: ONE `squeue` (+ ONE `sacct` for ids that left the queue) per refresh.

Works degraded when accounting is disabled (sacct exits non-zero with "accounting storage is
disabled"): states then come from squeue only, and ids that left the queue read ``UNKNOWN``.
While slurmctld is unreachable (restarting: clients retry for MessageTimeout, then fail) or a
command hangs past its timeout, squeue lists nothing and states come from sacct (slurmdbd); a
refresh never raises for it, the next one simply asks again.
Finished states are cached, so finished jobs cost no further calls. The poller backs off
(2 s doubling to 60 s) while nothing changes.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable

from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.slurm.dependency import FINISHED_STATES
from mft_hpc.slurm.job_states import master_id, parse_state_lines

UNKNOWN = "UNKNOWN"
ACCOUNTING_DISABLED = "accounting storage is disabled"


def _answer(commands: SlurmCommands, *argv: str) -> subprocess.CompletedProcess | None:
    """The command's answer, or None when it hung past ``commands.timeout_s`` (no answer this time)."""
    try:
        return commands.run(*argv)
    except subprocess.TimeoutExpired:
        return None


def squeue_states(commands: SlurmCommands, masters: list[str]) -> dict[str, str]:
    # -t all: slurmctld still lists finished jobs for MinJobAge, fresher than lagging accounting.
    # squeue fails with "Invalid job id specified" when every id has left slurmctld, and with
    # "Unable to contact slurm controller" while it is down: none listed either way.
    done = _answer(commands, "squeue", "-h", "-t", "all", "-o", "%i|%T", "-j", ",".join(masters))
    return parse_state_lines(done.stdout) if done is not None and done.returncode == 0 else {}


@dataclass
class StatusPoller:
    """Refreshes the states of a run's jobs; one instance per controller."""

    commands: SlurmCommands = field(default_factory=SlurmCommands)
    since: datetime = field(default_factory=lambda: datetime.now() - timedelta(days=7))
    min_delay_s: float = 2.0
    max_delay_s: float = 60.0
    accounting: bool = True
    next_delay_s: float = 2.0
    last: dict[str, str] = field(default_factory=dict)

    def _sacct_states(self, masters: list[str]) -> dict[str, str]:
        done = _answer(self.commands, "sacct", "-X", "-n", "-P", "-o", "JobID,State",
                       "--starttime", self.since.strftime("%Y-%m-%dT%H:%M:%S"), "-j", ",".join(masters))
        if done is None:
            return {}
        return self.read_sacct(done.returncode, done.stdout, done.stderr)

    def read_sacct(self, returncode: int, stdout: str, stderr: str) -> dict[str, str]:
        """States from one sacct answer; switches to degraded mode when accounting is off."""
        if returncode == 0:
            return parse_state_lines(stdout)
        if ACCOUNTING_DISABLED in (stderr + stdout).lower():
            self.accounting = False
        return {}

    def refresh(self, job_ids: Iterable[str]) -> dict[str, str]:
        """{id: state} for every id (plain ``123`` or array element ``123_4``).

        Finished states are final (never asked again). An id that left the queue but whose
        accounting record still lags (sacct says PENDING/RUNNING or nothing) keeps its last
        state; without accounting it reads UNKNOWN.
        """
        wanted = sorted(set(job_ids))
        if not wanted:
            return {}
        final = {i: self.last[i] for i in wanted if self.last.get(i) in FINISHED_STATES}
        open_ids = [i for i in wanted if i not in final]
        states = dict(final)
        if open_ids:
            queued = squeue_states(self.commands, sorted({master_id(i) for i in open_ids}))
            missing = [i for i in open_ids if i not in queued]
            history = {}
            if missing and self.accounting:
                history = self._sacct_states(sorted({master_id(i) for i in missing}))
            for job_id in open_ids:
                states[job_id] = queued.get(job_id) or self._left_queue_state(job_id, history.get(job_id))
        self.update_delay(changed=states != {i: self.last.get(i) for i in wanted})
        self.last.update(states)
        return {i: states[i] for i in wanted}

    def _left_queue_state(self, job_id: str, recorded: str | None) -> str:
        if recorded in FINISHED_STATES:
            return recorded
        if not self.accounting:
            return UNKNOWN
        return self.last.get(job_id) or recorded or UNKNOWN

    def update_delay(self, changed: bool) -> float:
        """Back to the minimum on any change, else double up to the maximum."""
        self.next_delay_s = self.min_delay_s if changed else min(self.max_delay_s, self.next_delay_s * 2)
        return self.next_delay_s
