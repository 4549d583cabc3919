"""The run's timeline (one bar per run of every element) and its cost in CPU- and GPU-hours.

Slurm: from accounting (``report.accounting``), every run of every attempt the state store
recorded, queued (submit -> start) and running (start -> end) with Slurm's final state, requeued
runs included. Local executor (or Slurm without accounting): from the state store's attempt times,
cost = measured wall time x the resources the element asked for, and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass

from mft_hpc.report.accounting import JobRecord, sacct_records
from mft_hpc.rundir.state import Attempt, Element
from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.slurm.job_states import master_id

SOURCE_SACCT = "sacct"
SOURCE_MEASURED = "measured"

# Slurm's state -> the bar's class on the page
_BAR_STATES = {"COMPLETED": "completed", "REQUEUED": "requeued", "RUNNING": "running", "COMPLETING": "running",
               "PENDING": "pending", "TIMEOUT": "timeout", "DEADLINE": "timeout", "CANCELLED": "cancelled",
               "PREEMPTED": "requeued"}


def bar_state(slurm_state: str) -> str:
    return _BAR_STATES.get(slurm_state, "failed")


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int


def _hours(seconds: float) -> float:
    return seconds / 3600.0


def _bar(element: Element, attempt: int, job_id: str, state: str, submit, start, end, cpus: int, gpus: int,
         cpu_s: float, gpu_s: float) -> dict:
    return {"label": element.label, "stage": element.stage, "member": element.member, "task": element.task,
            "attempt": attempt, "job_id": job_id, "state": state, "submit": submit, "start": start, "end": end,
            "cpus": cpus, "gpus": gpus, "cpu_hours": _hours(cpu_s), "gpu_hours": _hours(gpu_s)}


def _sacct_bars(elements: list[Element], attempts: dict[int, list[Attempt]], records: list[JobRecord]) -> list[dict]:
    by_job: dict[str, list[JobRecord]] = {}
    for record in records:
        by_job.setdefault(record.job_id, []).append(record)
    bars, seen = [], set()
    for element in elements:
        for attempt in attempts.get(element.id, []):
            job_id = attempt.slurm_job_id
            if not job_id or job_id in seen:  # a job shared by elements is paid for once
                continue
            seen.add(job_id)
            for record in by_job.get(job_id, []):
                bars.append(_bar(element, attempt.attempt, job_id, bar_state(record.state), record.submit,
                                 record.start, record.end, record.cpus, record.gpus, record.cpu_s, record.gpu_s))
    return bars


def _measured_bars(elements: list[Element], attempts: dict[int, list[Attempt]],
                   resources: dict[tuple[str, str], Resources]) -> list[dict]:
    """Local jobs start when submitted; one job may serve several elements (one per stage and member)."""
    jobs: dict[str, list[tuple[Element, Attempt]]] = {}
    for element in elements:
        for attempt in attempts.get(element.id, []):
            jobs.setdefault(attempt.slurm_job_id or f"element-{element.id}-{attempt.attempt}", []).append(
                (element, attempt))
    bars = []
    for job_id, served in jobs.items():
        element, attempt = served[0]
        ends = [a.ended_at for _, a in served if a.ended_at is not None]
        start = min(a.submitted_at for _, a in served)
        end = max(ends) if len(ends) == len(served) else None
        wall = (end - start) if end is not None else 0.0
        res = resources.get((element.stage, element.member), Resources(0, 0))
        for index, (item, item_attempt) in enumerate(served):
            share = 1.0 if index == 0 else 0.0  # the job's cost once, on its first element
            bars.append(_bar(item, item_attempt.attempt, job_id, item_attempt.state, item_attempt.submitted_at,
                             item_attempt.submitted_at, item_attempt.ended_at, res.cpus, res.gpus,
                             share * wall * res.cpus, share * wall * res.gpus))
    return bars


def cost_of(bars: list[dict]) -> dict:
    """CPU-/GPU-hours by stage, by member and in total."""
    def add(table: dict, key: str, bar: dict) -> None:
        row = table.setdefault(key, {"cpu_hours": 0.0, "gpu_hours": 0.0, "runs": 0})
        row["cpu_hours"] += bar["cpu_hours"]
        row["gpu_hours"] += bar["gpu_hours"]
        row["runs"] += 1

    by_stage: dict = {}
    by_member: dict = {}
    total = {"cpu_hours": 0.0, "gpu_hours": 0.0, "runs": 0}
    for bar in bars:
        add(by_stage, bar["stage"], bar)
        add(by_member, bar["member"], bar)
        total["cpu_hours"] += bar["cpu_hours"]
        total["gpu_hours"] += bar["gpu_hours"]
        total["runs"] += 1
    return {"by_stage": by_stage, "by_member": by_member, "total": total}


def scheduling(elements: list[Element], attempts: dict[int, list[Attempt]], executor: str,
               resources: dict[tuple[str, str], Resources], commands: SlurmCommands | None = None) -> dict:
    """Timeline bars + cost, and where the figures come from."""
    notes = []
    source = SOURCE_MEASURED
    if executor == "slurm":
        submitted = [a for runs in attempts.values() for a in runs if a.slurm_job_id]
        ids = sorted({master_id(a.slurm_job_id) for a in submitted})
        # an hour of slack: the store's clock is the submitting host's, sacct's the controller's
        since = min(a.submitted_at for a in submitted) - 3600 if submitted else None
        records, problem = sacct_records(ids, since, commands)
        if problem is None:
            source = SOURCE_SACCT
            bars = _sacct_bars(elements, attempts, records)
            known = {bar["job_id"] for bar in bars}
            lagging = sorted({a.slurm_job_id for runs in attempts.values() for a in runs
                              if a.slurm_job_id and a.slurm_job_id not in known})
            if lagging:
                notes.append(f"{len(lagging)} job(s) not in accounting yet: {', '.join(lagging[:8])}")
        else:
            notes.append(f"{problem}: times and cost measured from the controller's state store instead")
            bars = _measured_bars(elements, attempts, resources)
    else:
        bars = _measured_bars(elements, attempts, resources)
    if not bars:
        notes.append("no job has been submitted yet" if not any(attempts.values()) else "no job run recorded")
    label = ("Slurm accounting (sacct: CPUTimeRAW; gres/gpu x ElapsedRaw)" if source == SOURCE_SACCT else
             "measured: wall time x requested CPUs/GPUs (no scheduler accounting)")
    return {"source": source, "source_label": label, "bars": bars, "cost": cost_of(bars), "notes": notes}
