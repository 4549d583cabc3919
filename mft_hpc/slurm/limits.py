"""How many more jobs this user may queue now: the site's limits and what already counts against them.

Slurm counts every task of an array as one job against both limits that refuse a submission:
- ``MaxJobCount`` (slurm.conf): job records slurmctld holds, everyone's, finished ones included
  until ``MinJobAge`` purges them;
- ``MaxSubmitJobs`` of the user's association (sacctmgr; enforced with ``AccountingStorageEnforce``
  = limits): this user's pending + running jobs.
``MaxJobs`` of the association only caps how many run at once (the rest wait with reason
AssocMaxJobsLimit): it is reported, not planned around. One ``scontrol``, one ``sacctmgr`` and one
``squeue`` per reading, each parsed in time linear in its output.
"""

from __future__ import annotations

import getpass
import re
import subprocess
from dataclasses import dataclass

from mft_hpc.slurm.commands import DEFAULT_MAX_ARRAY_SIZE, SlurmCommands
from mft_hpc.slurm.dependency import FINISHED_STATES

DEFAULT_MAX_JOB_COUNT = 10000  # Slurm's default, used when `scontrol show config` does not answer
_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class SiteLimits:
    max_array_size: int
    max_job_count: int
    jobs_in_system: int              # records slurmctld holds now (array tasks one by one)
    max_submit_jobs: int | None      # the user's association (None: no limit set or no accounting)
    user_jobs: int                   # this user's pending + running jobs
    max_jobs: int | None = None      # association MaxJobs: running at once
    known: bool = True               # False: Slurm did not answer, Slurm's defaults assumed

    def free(self) -> tuple[int, str]:
        """(jobs that can be queued now, the limit that binds, in words)."""
        options = [(self.max_job_count - self.jobs_in_system,
                    f"MaxJobCount={self.max_job_count} ({self.jobs_in_system} jobs held by slurmctld now)"
                    + ("" if self.known else ", Slurm's default: scontrol did not answer"))]
        if self.max_submit_jobs is not None:
            options.append((self.max_submit_jobs - self.user_jobs,
                            f"MaxSubmitJobs={self.max_submit_jobs} of your association ({self.user_jobs} queued now)"))
        free, reason = min(options)
        return max(free, 0), reason

    @property
    def per_wave(self) -> int:
        """The most jobs one wave may hold once earlier waves have left: the tighter limit itself."""
        return min(x for x in (self.max_job_count, self.max_submit_jobs) if x is not None)

    def describe(self) -> str:
        parts = [f"MaxArraySize={self.max_array_size}", f"MaxJobCount={self.max_job_count}"]
        if self.max_submit_jobs is not None:
            parts.append(f"MaxSubmitJobs={self.max_submit_jobs}")
        if self.max_jobs is not None:
            parts.append(f"MaxJobs={self.max_jobs} (at most that many run at once; the rest wait)")
        return ", ".join(parts) + ("" if self.known else " (Slurm did not answer: its defaults)")


def parse_config_value(config: dict[str, str], key: str, default: int) -> int:
    value = config.get(key, "").split()[0] if config.get(key) else ""
    return int(value) if _NUMBER.match(value) else default


def parse_associations(text: str) -> tuple[int | None, int | None]:
    """(MaxSubmitJobs, MaxJobs) from ``sacctmgr -n -P show assoc ... format=MaxSubmit,MaxJobs`` lines:
    the smallest over the user's associations (the one a job lands in is not known here)."""
    submit, running = [], []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 2:
            continue
        if _NUMBER.match(fields[0]):
            submit.append(int(fields[0]))
        if _NUMBER.match(fields[1]):
            running.append(int(fields[1]))
    return (min(submit) if submit else None), (min(running) if running else None)


def count_jobs(text: str, user: str) -> tuple[int, int]:
    """(records in slurmctld, this user's unfinished jobs) from ``squeue -h -r -t all -o %u|%T`` lines."""
    total = mine = 0
    for line in text.splitlines():
        owner, _, state = line.partition("|")
        if not state:
            continue
        total += 1
        if owner == user and state.strip().split()[0] not in FINISHED_STATES:
            mine += 1
    return total, mine


def _answer(commands: SlurmCommands, *argv: str) -> str | None:
    try:
        done = commands.run(*argv)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def read_site_limits(commands: SlurmCommands | None = None, user: str | None = None) -> SiteLimits:
    """The limits and current counts; Slurm's defaults (``known=False``) when scontrol does not answer."""
    commands = commands or SlurmCommands()
    user = user or getpass.getuser()
    config = commands.config()
    if config is None:
        return SiteLimits(DEFAULT_MAX_ARRAY_SIZE, DEFAULT_MAX_JOB_COUNT, 0, None, 0, known=False)
    max_submit = max_jobs = None
    if config.get("AccountingStorageType", "").endswith("slurmdbd"):
        assoc = _answer(commands, "sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}",
                        f"cluster={config.get('ClusterName', '')}", "format=MaxSubmit,MaxJobs")
        max_submit, max_jobs = parse_associations(assoc or "")
    queue = _answer(commands, "squeue", "-h", "-r", "-t", "all", "-o", "%u|%T") or ""
    total, mine = count_jobs(queue, user)
    return SiteLimits(commands.max_array_size, parse_config_value(config, "MaxJobCount", DEFAULT_MAX_JOB_COUNT),
                      total, max_submit, mine, max_jobs)
