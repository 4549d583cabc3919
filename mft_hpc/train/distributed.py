"""Process-group setup: the job function itself exports the rendezvous and creates the Accelerator.

Inside a submitit job (Slurm or local, any number of tasks) the rendezvous comes from submitit's
TorchDistributedEnvironment; outside one (tests, a plain ``python``) it is a 1-process group on a
free local port. DeepSpeed always drives the engine (also ZeRO stage 0 and 1 process), so a
single-process run and a 2-node run execute the same code.
"""

from __future__ import annotations

import os
import socket

from mft_hpc.config.sections.train import TrainSection
from mft_hpc.train.deepspeed_config import build_deepspeed_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def export_rendezvous() -> int:
    """Set RANK/WORLD_SIZE/MASTER_ADDR/... for env:// init; returns the world size."""
    if os.environ.get("SUBMITIT_EXECUTOR") and "RANK" not in os.environ:
        from mft_hpc.slurm.distributed import distributed_env

        distributed_env(export=True)
    elif "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    return int(os.environ["WORLD_SIZE"])


def use_bf16(train: TrainSection) -> bool:
    import torch

    return torch.cuda.is_available() if train.bf16 is None else train.bf16


def make_accelerator(train: TrainSection):
    """An Accelerator running DeepSpeed with the config generated from ``train``."""
    import torch
    from accelerate import Accelerator, DeepSpeedPlugin
    from accelerate.utils import InitProcessGroupKwargs

    world_size = export_rendezvous()
    handlers = []
    if not torch.cuda.is_available():
        # gloo does every collective on CPU; the shm op would be JIT-compiled (minutes) for nothing
        import deepspeed.ops

        deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
        # without an explicit backend accelerate sees 1 process on CPU and DeepSpeed's batch check fails
        handlers.append(InitProcessGroupKwargs(backend="gloo"))
    bf16 = use_bf16(train)
    ds_config = build_deepspeed_config(train, world_size, bf16)
    plugin = DeepSpeedPlugin(hf_ds_config=ds_config)
    return Accelerator(deepspeed_plugin=plugin, kwargs_handlers=handlers,
                       mixed_precision="bf16" if bf16 else "no",
                       gradient_accumulation_steps=train.gradient_accumulation_steps)
