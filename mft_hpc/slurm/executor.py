"""Executor factory: the config's ``cluster`` section -> a submitit executor.

Slurm: ``AutoExecutor(cluster="slurm")`` with SlurmExecutor parameters; local:
``AutoExecutor(cluster="local")``; dry run: DryRunSlurmExecutor (same parameters, no sbatch).
Per-stage overrides (``nodes=1`` for generation arrays, another ``time``...) are validated as
``cluster`` fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import submitit

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.slurm.dry_run import DryRunLog, DryRunSlurmExecutor


def with_overrides(cluster: ClusterSection, **overrides: Any) -> ClusterSection:
    """A copy of ``cluster`` with ``overrides`` applied and validated like the config."""
    merged = {**cluster.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    return ClusterSection.model_validate(merged)


def tasks_per_node(cluster: ClusterSection) -> int:
    return cluster.tasks_per_node or max(1, cluster.gpus_per_node)


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
                "mem": cluster.mem, "job_name": name,
                "gpus_per_node": cluster.gpus_per_node or None}
    params.update({k: v for k, v in optional.items() if v is not None})
    additional = {**cluster.extra, **(sbatch_extra or {})}
    if additional:
        params["additional_parameters"] = additional
    return params


def make_executor(cluster: ClusterSection, folder: str | Path, *, name: str | None = None,
                  sbatch_extra: dict[str, Any] | None = None, dry_run: DryRunLog | None = None):
    """A submitit executor writing its pickles/logs under ``folder/<job id>``.

    ``sbatch_extra`` carries per-submission sbatch flags (``dependency`` ...); the local executor
    ignores Slurm-only settings.
    """
    job_folder = Path(folder) / "%j"
    if dry_run is not None:
        executor = DryRunSlurmExecutor(job_folder, dry_run)
        executor.update_parameters(**slurm_parameters(cluster, name, sbatch_extra))
        return executor
    if cluster.executor == "local":
        executor = submitit.AutoExecutor(folder=job_folder, cluster="local")
        executor.update_parameters(timeout_min=cluster.time, nodes=cluster.nodes,
                                   tasks_per_node=tasks_per_node(cluster), cpus_per_task=cluster.cpus_per_task,
                                   gpus_per_node=cluster.gpus_per_node, name=name)
        return executor
    executor = submitit.AutoExecutor(folder=job_folder, cluster="slurm")
    params = slurm_parameters(cluster, name, sbatch_extra)
    executor.update_parameters(**{f"slurm_{key}": value for key, value in params.items()})
    return executor
