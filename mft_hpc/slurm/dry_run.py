"""Dry run: build every sbatch script submitit would submit, collect it, submit nothing.

The script text comes from submitit's own SlurmExecutor (``_make_submission_file_text``), so a dry
run shows exactly what a real run submits. Jobs get fake ids (``DRY1``, ``DRY2_0`` ...) so that
dependents can still be rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from submitit.slurm.slurm import SlurmExecutor


@dataclass(frozen=True)
class DryRunJob:
    """Stands in for a submitit job: only the id is meaningful."""

    job_id: str


@dataclass
class DryRunLog:
    """The scripts a dry run would have submitted, in submission order, keyed by fake id."""

    scripts: dict[str, str] = field(default_factory=dict)

    def record(self, script: str) -> str:
        job_id = f"DRY{len(self.scripts) + 1}"
        self.scripts[job_id] = script
        return job_id

    def render(self) -> str:
        return "\n".join(f"### {job_id}\n{script}" for job_id, script in self.scripts.items())


class DryRunSlurmExecutor(SlurmExecutor):
    """A SlurmExecutor that records scripts instead of calling sbatch (works without Slurm)."""

    def __init__(self, folder: str | Path, log: DryRunLog, python: str | None = None) -> None:
        super().__init__(folder, python=python)
        self.dry_run_log = log

    @classmethod
    def affinity(cls) -> int:  # usable where srun is missing
        return 1

    def _internal_process_submissions(self, delayed_submissions):
        count = len(delayed_submissions)
        parameters = dict(self.parameters)
        if count > 1:
            self.parameters["map_count"] = count  # submitit renders --array from map_count
        try:
            script = self._make_submission_file_text(self._submitit_command_str, uid="dry-run")
        finally:
            self.parameters = parameters
        job_id = self.dry_run_log.record(script)
        if count == 1:
            return [DryRunJob(job_id)]
        return [DryRunJob(f"{job_id}_{index}") for index in range(count)]
