"""One generation element: its tasks (or shards of tasks) with one model/engine load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mft_hpc.config.sections.generate import GenerateSection
from mft_hpc.elements.logs import job_logging

Unit = tuple[str, "int | None"]   # (task, shard); shard None: the whole task


@dataclass(frozen=True)
class GenerateElement:
    """Generate ``units`` of the member whose ``generate/`` folder is ``out_dir``; one result per unit."""

    model_dir: str
    units: tuple[Unit, ...]
    out_dir: str
    config: GenerateSection
    model_name: str
    trust_remote_code: bool = False

    def __call__(self) -> list[dict]:
        job_logging()
        from mft_hpc.generate import run_tasks

        return run_tasks(self.model_dir, [tuple(unit) for unit in self.units], self.out_dir, self.config,
                         model_name=self.model_name, trust_remote_code=self.trust_remote_code)


def merge_finished_shards(generate_dir: str | Path, tasks: list[str], config: GenerateSection, model: str) -> None:
    """Write the generations file of each task whose shards are all done but never merged (the last
    shard died between its raw file and the merge); a no-op for merged or unfinished tasks."""
    from mft_hpc.generate import finalize_task
    from mft_hpc.generate.outputs import generations_path
    from mft_hpc.rundir import is_done

    for task in tasks:
        if not is_done(generations_path(generate_dir, task, model)):
            finalize_task(generate_dir, task, config, model)
