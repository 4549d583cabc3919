"""torch.distributed settings inside a multi-node job, from submitit's TorchDistributedEnvironment."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

LOWEST_PORT = 20000


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
    if "MASTER_PORT" not in os.environ:  # a port the user set is kept
        env.master_port = master_port_for(str(env._job_env.job_id))
    if export:
        env.export(set_cuda_visible_devices=False)
    return DistributedEnv(rank=env.rank, world_size=env.world_size, local_rank=env.local_rank,
                          local_world_size=env.local_world_size, master_addr=env.master_addr,
                          master_port=env.master_port)


def _ephemeral_low(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    try:
        with open(path) as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


def master_port_for(job_id: str) -> int:
    """The rendezvous port every task of a job derives alike from the job id, below the kernel's
    ephemeral range: submitit's own pick spans 20000-60000, where an outgoing connection of any
    process on the node may already hold the port (EADDRINUSE, and the other ranks wait forever)."""
    high = max(LOWEST_PORT + 1000, _ephemeral_low()) - 1
    return random.Random(job_id).randint(LOWEST_PORT, high)
