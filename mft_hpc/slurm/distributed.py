"""torch.distributed settings inside a multi-node job, from submitit's TorchDistributedEnvironment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DistributedEnv:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int


def distributed_env(export: bool = True) -> DistributedEnv:
    """Rank/world/local rank/master of this task; ``export`` sets RANK, MASTER_ADDR... for env://.

    Call it inside a job (nodes x tasks_per_node tasks); CUDA_VISIBLE_DEVICES is left alone.
    """
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment()
    if export:
        env.export(set_cuda_visible_devices=False)
    return DistributedEnv(rank=env.rank, world_size=env.world_size, local_rank=env.local_rank,
                          local_world_size=env.local_world_size, master_addr=env.master_addr,
                          master_port=env.master_port)
