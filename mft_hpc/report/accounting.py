"""Slurm accounting of a run's jobs: one ``sacct`` call, one record per allocation and run.

``sacct -X -D``: allocations only (no steps), and with ``--duplicates`` every earlier run of a
requeued job too (state REQUEUED), so a preempted element shows both its runs and both are paid for.
CPU time is sacct's own ``CPUTimeRAW`` (allocated CPUs x elapsed seconds); GPU time is the allocated
``gres/gpu`` count of ``AllocTRES`` x ``ElapsedRaw``, the same product sacct makes for CPUs.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime

from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.slurm.job_states import expand_job_id, normalize_state

FIELDS = ("JobID", "State", "Submit", "Start", "End", "ElapsedRaw", "CPUTimeRAW", "AllocTRES")


@dataclass(frozen=True)
class JobRecord:
    job_id: str              # "123" or "123_4" (array element)
    state: str               # first word of sacct's State ("CANCELLED by 0" -> "CANCELLED")
    submit: float | None     # epoch seconds
    start: float | None
    end: float | None        # None while running or pending
    elapsed_s: float
    cpu_s: float             # sacct CPUTimeRAW
    cpus: int
    gpus: int

    @property
    def gpu_s(self) -> float:
        return self.gpus * self.elapsed_s


def parse_tres(text: str) -> dict[str, str]:
    """``billing=2,cpu=2,gres/gpu=1,mem=1G,node=1`` -> ``{"cpu": "2", "gres/gpu": "1", ...}``."""
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


def _time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.strip()).timestamp()  # sacct prints local time
    except ValueError:
        return None  # "Unknown", "None"


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        return 0


def parse_sacct(stdout: str) -> list[JobRecord]:
    """Records from ``sacct -n -P -o FIELDS`` output; a pending array range (``12_[3-9%2]``) becomes
    one record per element."""
    records = []
    for line in stdout.splitlines():
        parts = line.split("|")
        if len(parts) != len(FIELDS):
            continue
        row = dict(zip(FIELDS, parts))
        tres = parse_tres(row["AllocTRES"])
        for job_id in expand_job_id(row["JobID"]):
            records.append(JobRecord(
                job_id=job_id, state=normalize_state(row["State"]), submit=_time(row["Submit"]),
                start=_time(row["Start"]), end=_time(row["End"]), elapsed_s=float(_int(row["ElapsedRaw"])),
                cpu_s=float(_int(row["CPUTimeRAW"])), cpus=_int(tres.get("cpu", "0")),
                gpus=_int(tres.get("gres/gpu", "0"))))
    return records


def sacct_records(job_ids: list[str], since: float | None = None,
                  commands: SlurmCommands | None = None) -> tuple[list[JobRecord], str | None]:
    """Records of the jobs (array master ids bring every element); (records, None) or ([], why not).

    ``since`` (epoch seconds, the run's first submission): older jobs that had the same id (ids restart
    after MaxJobId or a wiped controller) are left out; without it sacct searches all of history.
    """
    if not job_ids:
        return [], None
    commands = commands or SlurmCommands()
    argv = ["sacct", "-X", "-D", "-n", "-P", "-o", ",".join(FIELDS), "-j", ",".join(sorted(set(job_ids)))]
    if since is not None:
        argv += ["--starttime", datetime.fromtimestamp(since).strftime("%Y-%m-%dT%H:%M:%S")]
    try:
        done = commands.run(*argv)
    except (OSError, subprocess.TimeoutExpired) as err:
        return [], f"sacct could not run: {err}"
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return [], f"sacct failed: {lines[-1] if lines else f'exit status {done.returncode}'}"
    return parse_sacct(done.stdout), None
