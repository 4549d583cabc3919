"""Resources of each stage's jobs: the ``cluster`` section, the stage defaults, then ``cluster.stages.<stage>``.

Stage defaults (used where ``cluster.stages.<stage>`` does not set the key):
- train: the ``cluster`` section as written (a member's whole allocation, possibly multi-node);
- generate: 1 node x 1 task, 1 GPU if the cluster section has GPUs, and one task's share of the
  node memory (``mem`` / tasks per node) -- each element is one task;
- evaluate: 1 node x 1 task, no GPU, one task's share of the node memory (CPU work in the sandbox);
- collect: 1 node x 1 task x 1 CPU, no GPU, 4G.
A stage that sets one of mem / mem_per_cpu / mem_per_gpu drops the other two (Slurm takes one).
"""

from __future__ import annotations

from typing import Any

from mft_hpc.config.sections.cluster import MEMORY_KEYS, ClusterSection

STAGES = ("train", "generate", "evaluate", "collect")
COLLECT_MEM = "4G"
_UNITS_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


def memory_mb(value: str) -> float:
    """A Slurm size ('4G', '500M', '32000') in MB."""
    text = str(value).upper().removesuffix("B")
    if text[-1] in _UNITS_MB:
        return int(text[:-1]) * _UNITS_MB[text[-1]]
    return int(text)


def format_mb(mb: float) -> str:
    mb = max(1, int(-(-mb // 1)))  # round up to a whole MB
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def tasks_per_node(cluster: ClusterSection) -> int:
    return cluster.tasks_per_node or max(1, cluster.gpus_per_node)


def _task_share_of_memory(cluster: ClusterSection) -> dict[str, Any]:
    """One task's share of the default node memory (``mem`` is per node; per-CPU/GPU already scale)."""
    if cluster.mem is None:
        return {}
    return {"mem": format_mb(memory_mb(cluster.mem) / tasks_per_node(cluster))}


def stage_defaults(cluster: ClusterSection, stage: str) -> dict[str, Any]:
    """The keys a stage changes when ``cluster.stages.<stage>`` does not set them."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if stage == "train":
        return {}
    single = {"nodes": 1, "tasks_per_node": 1}
    if stage == "generate":
        return {**single, "gpus_per_node": min(1, cluster.gpus_per_node), **_task_share_of_memory(cluster)}
    no_gpu = {**single, "gpus_per_node": 0, "mem_per_gpu": None}
    if stage == "evaluate":
        return {**no_gpu, **_task_share_of_memory(cluster)}
    return {**no_gpu, "cpus_per_task": 1, "mem": COLLECT_MEM, "mem_per_cpu": None}


def _stage_overrides(cluster: ClusterSection, stage: str) -> dict[str, Any]:
    """The keys ``cluster.stages.<stage>`` sets (not null)."""
    return {key: value for key, value in getattr(cluster.stages, stage) if value is not None}


def _with_memory_rule(values: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``values`` updated by ``changes``; setting one memory key drops the other two."""
    merged = dict(values)
    if any(changes.get(key) is not None for key in MEMORY_KEYS):
        merged.update({key: None for key in MEMORY_KEYS})
    merged.update(changes)
    return merged


def resolve_stage(cluster: ClusterSection, stage: str) -> ClusterSection:
    """The resources of ``stage``'s jobs, as a ``ClusterSection`` without stage overrides."""
    values = cluster.model_dump(exclude={"stages"})
    values = _with_memory_rule(values, stage_defaults(cluster, stage))
    overrides = _stage_overrides(cluster, stage)
    if "extra" in overrides:
        overrides["extra"] = {**values["extra"], **overrides["extra"]}
    values = _with_memory_rule(values, overrides)
    return ClusterSection.model_validate(values)


def origin_of(cluster: ClusterSection, stage: str, key: str) -> tuple:
    """The config key a resolved value came from: ``cluster.stages.<stage>.<key>`` or ``cluster.<key>``."""
    if key in _stage_overrides(cluster, stage):
        return ("cluster", "stages", stage, key)
    return ("cluster", key)


def cluster_problems(cluster: ClusterSection) -> list[tuple[tuple, str]]:
    """(config key, reason) for settings that are valid one by one but not together."""
    problems: list[tuple[tuple, str]] = []
    levels = [(("cluster",), cluster.model_dump())] + [
        (("cluster", "stages", stage), dict(getattr(cluster.stages, stage))) for stage in STAGES]
    for loc, values in levels:
        given = [key for key in MEMORY_KEYS if values.get(key) is not None]
        if len(given) > 1:
            problems.append((loc + (given[1],), f"{' and '.join(given)} are exclusive (sbatch takes one): keep one"))
    if problems:
        return problems
    for stage in STAGES:
        resources = resolve_stage(cluster, stage)
        if resources.mem_per_gpu is not None and resources.gpus_per_node == 0:
            problems.append((origin_of(cluster, stage, "mem_per_gpu"),
                             f"the {stage} stage has no GPUs (gpus_per_node: 0): use mem or mem_per_cpu"))
    return problems


def describe(resources: ClusterSection) -> str:
    """One line: where and with what a stage's jobs run (``config show``, ``doctor``)."""
    memory = next((f"{key}={getattr(resources, key)}" for key in MEMORY_KEYS if getattr(resources, key)),
                  "mem=(Slurm default)")
    parts = [f"partition={resources.partition or '(default)'}",
             f"nodes={resources.nodes}", f"tasks_per_node={tasks_per_node(resources)}",
             f"gpus_per_node={resources.gpus_per_node}", f"cpus_per_task={resources.cpus_per_task}",
             memory, f"time={resources.time}min"]
    for key in ("account", "qos", "constraint", "exclude"):
        if getattr(resources, key):
            parts.append(f"{key}={getattr(resources, key)}")
    if resources.setup:
        parts.append(f"setup={len(resources.setup)} line{'s' if len(resources.setup) != 1 else ''}")
    return " ".join(parts)


def stages_to_run(configs: list) -> list[str]:
    """The stages that submit jobs for these (member) configs, in pipeline order."""
    running = {
        "train": any(c.train.enabled for c in configs),
        "generate": any(c.generate.enabled for c in configs),
        "evaluate": any(c.generate.enabled and c.evaluate.enabled for c in configs),
        "collect": any(c.collect.enabled for c in configs),
    }
    return [stage for stage in STAGES if running[stage]]
