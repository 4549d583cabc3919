"""Submit the generation array: one element per task (or per shard), finished elements skipped."""

from __future__ import annotations

from pathlib import Path

from mft_hpc.generate.outputs import generations_path, valid_model_name
from mft_hpc.generate.rawfile import raw_path
from mft_hpc.generate.run import task_problems
from mft_hpc.generate.shards import elements
from mft_hpc.rundir import is_done


def pending_elements(out_dir: str | Path, gen_cfg, model_name: str) -> list[tuple[str, int | None]]:
    """(task, shard) of every element whose work is not finished yet, in task order."""
    sizes = {task: len(task_problems(gen_cfg, task)) for task in gen_cfg.tasks}
    pending = []
    for task, shard in elements(sizes, gen_cfg.shard_size):
        if is_done(generations_path(out_dir, task, model_name)):
            continue
        if shard is not None and is_done(raw_path(out_dir, task, shard)):
            continue  # this shard is done; another shard's element will merge the task
        pending.append((task, shard))
    return pending


def submit_generation(executor, model_dir: str | Path, out_dir: str | Path, gen_cfg, model_name: str | None = None,
                      trust_remote_code: bool = False) -> list:
    """One ``map_array`` call (a Slurm job array on a Slurm executor); [] when all is done."""
    from jobs.generate import generate_element

    model = valid_model_name(model_name or gen_cfg.model_name)
    todo = pending_elements(out_dir, gen_cfg, model)
    if not todo:
        return []
    n = len(todo)
    return executor.map_array(generate_element, [str(model_dir)] * n, [task for task, _ in todo], [str(out_dir)] * n,
                              [gen_cfg] * n, [shard for _, shard in todo], [model] * n, [trust_remote_code] * n)
