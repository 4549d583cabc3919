from __future__ import annotations

from typing import Literal

from pydantic import Field

from mft_hpc.config.sections.base import Section


class ClusterSection(Section):
    """Scheduler settings. ``executor: local`` runs everything on this machine (no Slurm)."""

    executor: Literal["slurm", "local"] = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = Field(60, ge=1, description="minutes per job")
    nodes: int = Field(1, ge=1)
    tasks_per_node: int | None = Field(None, ge=1, description="default: gpus_per_node, or 1 without GPUs")
    gpus_per_node: int = Field(0, ge=0)
    cpus_per_task: int = Field(1, ge=1)
    mem: str | None = Field(None, description="e.g. '32G'; None leaves Slurm's default")
    array_parallelism: int = Field(16, ge=1, description="the %N throttle of every array")
    extra: dict[str, str | int | bool] = Field(default_factory=dict, description="extra sbatch parameters")
