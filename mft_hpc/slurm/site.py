"""What the cluster offers, read from ``sinfo`` / ``scontrol``, and whether each stage's jobs fit it.

``run`` checks every stage it will submit against ``sinfo`` before anything is submitted (a wrong
partition, GPUs on a partition without GPU GRES, more nodes, CPUs or memory than a node has, an
unknown node feature); ``doctor`` prints the same findings with the cluster's facts.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.stages import MEMORY_KEYS, memory_mb, origin_of, resolve_stage, tasks_per_node
from mft_hpc.slurm.commands import SlurmCommands

# one row per (partition, node): name (default marked '*'), node, CPUs, memory MB, GRES, features, avail
SINFO_FORMAT = "%P|%N|%c|%m|%G|%f|%a"
_GPU = re.compile(r"(?:^|,)gpu(?::[^:,(]+)?:(\d+)")
_FEATURE_WORD = re.compile(r"[A-Za-z_][\w.-]*")


class SlurmUnavailable(Exception):
    """A Slurm client command failed or is missing; ``str()`` says which and why."""


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mb: int
    gpus: int
    gres: str
    features: frozenset[str]


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    available: str
    nodes: tuple[Node, ...]

    @property
    def max_gpus(self) -> int:
        return max((node.gpus for node in self.nodes), default=0)

    @property
    def gres(self) -> str:
        return ",".join(sorted({node.gres for node in self.nodes if node.gres})) or "(none)"

    @property
    def features(self) -> frozenset[str]:
        return frozenset().union(*(node.features for node in self.nodes))


def gpu_count(gres: str) -> int:
    """GPUs in a ``%G`` GRES string: 'gpu:2', 'gpu:a100:4(S:0-1)', 'gpu:a:2,gpu:b:2' (summed), '(null)'."""
    return sum(int(count) for count in _GPU.findall(gres or ""))


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from ``sinfo -h -N -o SINFO_FORMAT`` output: the default first, then by name."""
    rows: dict[str, dict] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 7:
            continue
        name, node, cpus, memory, gres, features, available = fields
        default = name.endswith("*")
        name = name.rstrip("*")
        gres = "" if gres == "(null)" else gres
        part = rows.setdefault(name, {"default": default, "available": available, "nodes": {}})
        part["nodes"][node] = Node(node, int(cpus or 0), int(memory or 0), gpu_count(gres), gres,
                                   frozenset() if features == "(null)" else frozenset(features.split(",")))
    ordered = sorted(rows, key=lambda name: (not rows[name]["default"], name))
    return {name: Partition(name, rows[name]["default"], rows[name]["available"], tuple(rows[name]["nodes"].values()))
            for name in ordered}


def _answer(commands: SlurmCommands, *argv: str) -> str:
    try:
        done = commands.run(*argv)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SlurmUnavailable(f"{argv[0]}: {err}") from None
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise SlurmUnavailable(f"{' '.join(argv[:2])}: {reason[-1] if reason else f'exit {done.returncode}'}")
    return done.stdout


def read_partitions(commands: SlurmCommands | None = None) -> dict[str, Partition]:
    """One ``sinfo`` call; raises SlurmUnavailable when it fails."""
    return parse_sinfo(_answer(commands or SlurmCommands(), "sinfo", "-h", "-N", "-o", SINFO_FORMAT))


def read_config(commands: SlurmCommands | None = None) -> dict[str, str]:
    """``scontrol show config`` as {key: value}; raises SlurmUnavailable when it fails."""
    values = {}
    for line in _answer(commands or SlurmCommands(), "scontrol", "show", "config").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _node_memory_mb(resources: ClusterSection) -> float | None:
    """Memory a stage's job needs on one node, or None when it leaves memory to Slurm."""
    if resources.mem:
        return memory_mb(resources.mem)
    if resources.mem_per_cpu:
        return memory_mb(resources.mem_per_cpu) * resources.cpus_per_task * tasks_per_node(resources)
    if resources.mem_per_gpu:
        return memory_mb(resources.mem_per_gpu) * resources.gpus_per_node
    return None


def _memory_key(resources: ClusterSection) -> str:
    return next((key for key in MEMORY_KEYS if getattr(resources, key)), "mem")


def stage_fit_problems(cluster: ClusterSection, stage: str, partitions: dict[str, Partition]) -> list[tuple[tuple, str]]:
    """(config key, reason) for each way ``stage``'s jobs cannot run on this cluster as configured."""
    resources = resolve_stage(cluster, stage)

    def problem(key: str, reason: str) -> tuple[tuple, str]:
        return origin_of(cluster, stage, key), f"{stage} stage: {reason}"

    if resources.partition is None:
        partition = next((p for p in partitions.values() if p.default), None)
        if partition is None:
            return [problem("partition", "no partition given and the cluster has no default partition "
                                         f"(sinfo lists: {', '.join(partitions) or 'none'})")]
    else:
        partition = partitions.get(resources.partition)
        if partition is None:
            return [problem("partition", f"partition '{resources.partition}' does not exist "
                                         f"(sinfo lists: {', '.join(partitions) or 'none'})")]
    where = f"partition '{partition.name}'"
    problems = []
    if partition.available != "up":
        problems.append(problem("partition", f"{where} is {partition.available}, jobs would not start"))
    gpus = resources.gpus_per_node
    if gpus and partition.max_gpus == 0:
        problems.append(problem("gpus_per_node", f"asks for {gpus} GPU(s) per node, but {where} has no GPUs "
                                                 "(no gpu GRES on its nodes)"))
    elif gpus > partition.max_gpus:
        problems.append(problem("gpus_per_node", f"asks for {gpus} GPUs per node; nodes of {where} have at most "
                                                 f"{partition.max_gpus}"))
    cpus = tasks_per_node(resources) * resources.cpus_per_task
    memory = _node_memory_mb(resources)
    fitting = [n for n in partition.nodes if n.gpus >= gpus and n.cpus >= cpus
               and (memory is None or n.memory_mb >= memory)]
    if not problems and len(fitting) < resources.nodes:
        max_cpus = max((n.cpus for n in partition.nodes), default=0)
        max_mem = max((n.memory_mb for n in partition.nodes), default=0)
        if cpus > max_cpus:
            problems.append(problem("cpus_per_task", f"asks for {cpus} CPUs per node (tasks_per_node x "
                                                     f"cpus_per_task); nodes of {where} have at most {max_cpus}"))
        elif memory is not None and memory > max_mem:
            problems.append(problem(_memory_key(resources), f"asks for {memory:.0f} MB per node; nodes of {where} "
                                                            f"have at most {max_mem} MB"))
        else:
            problems.append(problem("nodes", f"asks for {resources.nodes} nodes; {where} has {len(fitting)} "
                                             "that fit the job"))
    if resources.constraint:
        unknown = sorted(set(_FEATURE_WORD.findall(resources.constraint)) - partition.features)
        if unknown:
            problems.append(problem("constraint", f"node feature(s) {', '.join(unknown)} not found in {where} "
                                                  f"(features: {', '.join(sorted(partition.features)) or 'none'})"))
    return problems


def config_fit_problems(configs: list, source, partitions: dict[str, Partition],
                        stages: list[str] | None = None) -> list[str]:
    """``file:line: key: reason`` for every stage of ``configs`` that runs (or of ``stages``) and would
    not fit this cluster; sweep members share one cluster section."""
    from pathlib import Path

    from mft_hpc.config.stages import stages_to_run
    from mft_hpc.config.yaml_lines import format_problem, key_lines

    try:
        lines = key_lines(Path(source).read_text())
    except OSError:
        lines = {}
    cluster = configs[0].cluster
    return [format_problem(source, lines, loc, reason)
            for stage in (stages or stages_to_run(configs))
            for loc, reason in stage_fit_problems(cluster, stage, partitions)]
