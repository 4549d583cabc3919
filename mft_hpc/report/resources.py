"""What each stage of a member asks the scheduler for: the cost basis of measured (local) runs.

The same per-stage resources the controller submits with (``mft_hpc.config.stages.resolve_stage``):
CPUs = nodes x tasks per node x cpus_per_task, GPUs = nodes x gpus_per_node.
"""

from __future__ import annotations


from mft_hpc.config.member import member_section
from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.stages import STAGES, resolve_stage, tasks_per_node
from mft_hpc.errors import UserError
from mft_hpc.report.schedule import Resources
from mft_hpc.rundir import RunDir
from mft_hpc.rundir.states import COLLECT_MEMBER


def stage_resources(cluster: ClusterSection) -> dict[str, Resources]:
    out = {}
    for stage in STAGES:
        resolved = resolve_stage(cluster, stage)
        out[stage] = Resources(cpus=resolved.nodes * tasks_per_node(resolved) * resolved.cpus_per_task,
                               gpus=resolved.nodes * resolved.gpus_per_node)
    return out


def run_resources(run: RunDir, members: list[str]) -> tuple[dict[tuple[str, str], Resources], list[str]]:
    """(stage, member) -> resources for every member whose config can be read; notes for the others."""
    out: dict[tuple[str, str], Resources] = {}
    notes = []
    for member in members:
        try:
            cluster = member_section(run, member, "cluster")
        except UserError as err:
            notes.append(f"{member}: cluster section unreadable ({str(err).splitlines()[0]}): its cost is 0")
            continue
        for stage, resources in stage_resources(cluster).items():
            if stage == "collect":
                out.setdefault((stage, COLLECT_MEMBER), resources)
            else:
                out[(stage, member)] = resources
    return out, notes
