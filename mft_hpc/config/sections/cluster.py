from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from mft_hpc.config.sections.base import Section

# Slurm's --mem syntax: a positive integer, optionally with a K/M/G/T suffix (default unit: MB)
_MEMORY = re.compile(r"^[1-9][0-9]*([KMGT]B?)?$", re.IGNORECASE)
MEMORY_KEYS = ("mem", "mem_per_cpu", "mem_per_gpu")


def _check_memory(value):
    """A Slurm size; a bare YAML number is MB, as for sbatch."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _MEMORY.match(value):
        raise ValueError("a positive size such as '4G', '500M' or 32000 (MB), as sbatch --mem takes it")
    return value


def _check_setup(lines):
    """Each item runs as one guarded block (mft_hpc.slurm.executor.guarded_setup)."""
    for line in lines or []:
        if line.rstrip().endswith("\\"):
            raise ValueError(f"a setup line cannot continue on the next item (ends with a backslash): {line!r}")
    return lines


class StageResources(Section):
    """Overrides of ``cluster`` keys for one stage; an absent (or null) key keeps the stage default,
    else the ``cluster`` value. Stage defaults: generate 1 node x 1 task x 1 GPU (0 if the cluster has
    none) with one task's share of ``mem``; evaluate the same without GPU; collect 1 CPU, 4G, no GPU.
    ``extra`` is merged into the cluster's; ``setup`` replaces it; one memory key drops the others."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int | None = Field(None, ge=1, description="minutes per job")
    nodes: int | None = Field(None, ge=1)
    tasks_per_node: int | None = Field(None, ge=1)
    gpus_per_node: int | None = Field(None, ge=0)
    cpus_per_task: int | None = Field(None, ge=1)
    mem: str | None = None
    mem_per_cpu: str | None = None
    mem_per_gpu: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    array_parallelism: int | None = Field(None, ge=1)
    extra: dict[str, str | int | bool] | None = None
    setup: list[str] | None = None
    python: str | None = None

    _memory = field_validator(*MEMORY_KEYS, mode="before")(_check_memory)
    _setup = field_validator("setup")(_check_setup)


class StagesSection(Section):
    """Per-stage resources (``cluster.stages.<stage>``): see mft_hpc.config.stages for the defaults."""

    train: StageResources = Field(default_factory=StageResources)
    generate: StageResources = Field(default_factory=StageResources)
    evaluate: StageResources = Field(default_factory=StageResources)
    collect: StageResources = Field(default_factory=StageResources)


class ClusterSection(Section):
    """Scheduler settings. ``executor: local`` runs everything on this machine (no Slurm).

    These keys are the default of every job; ``stages.{train,generate,evaluate,collect}`` override them.
    """

    executor: Literal["slurm", "local"] = "local"
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = Field(60, ge=1, description="minutes per job")
    nodes: int = Field(1, ge=1)
    tasks_per_node: int | None = Field(None, ge=1, description="default: gpus_per_node, or 1 without GPUs")
    gpus_per_node: int = Field(0, ge=0, description="GPUs per node, asked as Slurm GRES (--gpus-per-node)")
    cpus_per_task: int = Field(1, ge=1)
    mem: str | None = Field(None, description="memory per node, e.g. '32G'; None leaves Slurm's default")
    mem_per_cpu: str | None = Field(None, description="instead of mem: memory per CPU")
    mem_per_gpu: str | None = Field(None, description="instead of mem: memory per GPU")
    constraint: str | None = Field(None, description="node features (--constraint), e.g. 'a100&ib'")
    exclude: str | None = Field(None, description="nodes never to use (--exclude), e.g. 'node[01-03]'")
    array_parallelism: int = Field(16, ge=1, description="the %N throttle of every array")
    array_layout: Literal["auto", "member", "task"] = Field(
        "auto", description="sweep arrays: per member (2 per member) or per task across members (1 + 13 + 13 + 1 "
                            "whatever the sweep size, aftercorr on training); auto takes the fewer submissions")
    extra: dict[str, str | int | bool] = Field(default_factory=dict, description="extra sbatch parameters")
    setup: list[str] = Field(default_factory=list, description="shell lines every job runs first, e.g. "
                             "'module load apptainer'; a failing line fails the job")
    python: str | None = Field(None, description="the Python command on compute nodes; default: this interpreter")
    stages: StagesSection = Field(default_factory=StagesSection,
                                  description="per-stage overrides of these keys: train, generate, evaluate, collect")

    _memory = field_validator(*MEMORY_KEYS, mode="before")(_check_memory)
    _setup = field_validator("setup")(_check_setup)
