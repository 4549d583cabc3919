"""What each stage of a member asks the scheduler for: the cost basis of measured (local) runs.

The same per-stage overrides the controller submits with (``mft_hpc.controller.submit``), applied to
the member's ``cluster`` section: CPUs = nodes x tasks per node x cpus_per_task, GPUs = nodes x
gpus_per_node.
"""

from __future__ import annotations

from pathlib import Path

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.controller.submit import COLLECT_MEMBER, COLLECT_OVERRIDES, EVALUATE_OVERRIDES, GENERATE_OVERRIDES
from mft_hpc.errors import UserError
from mft_hpc.report.schedule import Resources
from mft_hpc.slurm.executor import tasks_per_node, with_overrides
from mft_hpc.submission.source import member_config


def _resources(cluster: ClusterSection) -> Resources:
    return Resources(cpus=cluster.nodes * tasks_per_node(cluster) * cluster.cpus_per_task,
                     gpus=cluster.nodes * cluster.gpus_per_node)


def stage_resources(cluster: ClusterSection) -> dict[str, Resources]:
    generate = {**GENERATE_OVERRIDES, "gpus_per_node": min(1, cluster.gpus_per_node)}
    return {"train": _resources(cluster), "generate": _resources(with_overrides(cluster, **generate)),
            "evaluate": _resources(with_overrides(cluster, **EVALUATE_OVERRIDES)),
            "collect": _resources(with_overrides(cluster, **COLLECT_OVERRIDES))}


def run_resources(run: Path, members: list[str]) -> tuple[dict[tuple[str, str], Resources], list[str]]:
    """(stage, member) -> resources for every member whose config can be read; notes for the others."""
    out: dict[tuple[str, str], Resources] = {}
    notes = []
    for member in members:
        try:
            tree, source = member_config(run, member)
            cluster = ClusterSection.model_validate(tree.get("cluster") or {})
        except (UserError, ValueError) as err:
            notes.append(f"{member}: cluster section unreadable ({str(err).splitlines()[0]}): its cost is 0")
            continue
        for stage, resources in stage_resources(cluster).items():
            if stage == "collect":
                out.setdefault((stage, COLLECT_MEMBER), resources)
            else:
                out[(stage, member)] = resources
    return out, notes
