"""Submit the generation array: one element per ``tasks_per_element`` tasks (or shards), finished ones skipped."""

from __future__ import annotations

from pathlib import Path

from mft_hpc.generate.outputs import generations_path, valid_model_name
from mft_hpc.generate.rawfile import raw_path
from mft_hpc.generate.run import task_problems
from mft_hpc.generate.shards import elements, pack
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
    """One ``map_array`` call (a Slurm job array on a Slurm executor); [] when all is done.

    Each element runs ``gen_cfg.tasks_per_element`` of the pending (task, shard) units with one model load."""
    from jobs.generate import generate_element

    model = valid_model_name(model_name or gen_cfg.model_name)
    groups = pack(pending_elements(out_dir, gen_cfg, model), gen_cfg.tasks_per_element)
    if not groups:
        return []
    n = len(groups)
    return executor.map_array(generate_element, [str(model_dir)] * n, groups, [str(out_dir)] * n, [gen_cfg] * n,
                              [model] * n, [trust_remote_code] * n)
