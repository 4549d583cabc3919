"""Executor factory: one stage's resources (a resolved ``cluster`` section) -> a submitit executor.

Slurm: ``AutoExecutor(cluster="slurm")`` with SlurmExecutor parameters (``cluster.python`` is its
``python``, ``cluster.setup`` its ``setup`` lines); local: ``AutoExecutor(cluster="local")``; dry
run: DryRunSlurmExecutor (same parameters, no sbatch). Per-submission overrides are validated as
``cluster`` fields.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import submitit

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.stages import tasks_per_node
from mft_hpc.slurm.dry_run import DryRunLog, DryRunSlurmExecutor

__all__ = ["guarded_setup", "make_executor", "slurm_parameters", "tasks_per_node", "with_overrides"]


def with_overrides(cluster: ClusterSection, **overrides: Any) -> ClusterSection:
    """A copy of ``cluster`` with ``overrides`` applied and validated like the config."""
    merged = {**cluster.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    return ClusterSection.model_validate(merged)


def guarded_setup(lines: list[str]) -> list[str]:
    """``cluster.setup`` as batch-script lines: each runs in the job's shell (``module load`` and
    ``source`` keep their effect), and the first that fails ends the job with a line naming it, the
    last line of the job's log (what ``status`` shows); the batch script itself has no ``set -e``."""
    guarded = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            guarded.append(line)  # nothing to run: an empty { } group would be a syntax error
            continue
        report = f'"mft-hpc: cluster.setup line failed (exit $_mft_status): "{shlex.quote(line)}'
        guarded += ["{", line, f"}} || {{ _mft_status=$?; printf '%s\\n' {report} >&2; exit $_mft_status; }}"]
    return guarded


def slurm_parameters(cluster: ClusterSection, name: str | None = None,
                     sbatch_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """SlurmExecutor parameters (submitit's own names) for ``cluster``."""
    params: dict[str, Any] = {
        "time": cluster.time,
        "nodes": cluster.nodes,
        "ntasks_per_node": tasks_per_node(cluster),
        "cpus_per_task": cluster.cpus_per_task,
        "array_parallelism": cluster.array_parallelism,
    }
    optional = {"partition": cluster.partition, "account": cluster.account, "qos": cluster.qos,
                "mem": cluster.mem, "mem_per_cpu": cluster.mem_per_cpu, "mem_per_gpu": cluster.mem_per_gpu,
                "constraint": cluster.constraint, "exclude": cluster.exclude, "job_name": name,
                "gpus_per_node": cluster.gpus_per_node or None,
                "setup": guarded_setup(cluster.setup) if cluster.setup else None}
    params.update({k: v for k, v in optional.items() if v is not None})
    additional = {**cluster.extra, **(sbatch_extra or {})}
    if additional:
        params["additional_parameters"] = additional
    return params


def make_executor(cluster: ClusterSection, folder: str | Path, *, name: str | None = None,
                  sbatch_extra: dict[str, Any] | None = None, dry_run: DryRunLog | None = None):
    """A submitit executor writing its pickles/logs under ``folder/<job id>``.

    ``sbatch_extra`` carries per-submission sbatch flags (``dependency`` ...); the local executor
    ignores Slurm-only settings (partition, memory, setup, python ...).
    """
    job_folder = Path(folder) / "%j"
    if dry_run is not None:
        executor = DryRunSlurmExecutor(job_folder, dry_run, python=cluster.python)
        executor.update_parameters(**slurm_parameters(cluster, name, sbatch_extra))
        return executor
    if cluster.executor == "local":
        executor = submitit.AutoExecutor(folder=job_folder, cluster="local")
        executor.update_parameters(timeout_min=cluster.time, nodes=cluster.nodes,
                                   tasks_per_node=tasks_per_node(cluster), cpus_per_task=cluster.cpus_per_task,
                                   gpus_per_node=cluster.gpus_per_node, name=name)
        return executor
    executor = submitit.AutoExecutor(folder=job_folder, cluster="slurm", slurm_python=cluster.python)
    params = slurm_parameters(cluster, name, sbatch_extra)
    executor.update_parameters(**{f"slurm_{key}": value for key, value in params.items()})
    return executor
