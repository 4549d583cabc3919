"""Helpers for the Slurm-layer tests (a module of its own: `conftest` names clash across test dirs)."""

from __future__ import annotations

import subprocess


def sacct_rows(job_ids: list[str], fields: str = "JobID,State,Start,End") -> dict[str, dict[str, str]]:
    names = fields.split(",")
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-o", fields, "-j", ",".join(job_ids)],
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        values = dict(zip(names, line.split("|")))
        rows[values["JobID"]] = values
    return rows


def submission_script(folder, job_id: str) -> str:
    """The sbatch script submitit wrote for ``job_id`` (an array's script is under its master id)."""
    master = str(job_id).split("_")[0]
    return (folder / master / f"{master}_submission.sh").read_text()


def scontrol_job(job_id: str) -> str:
    done = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True, check=True)
    return done.stdout
