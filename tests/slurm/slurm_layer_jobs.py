"""Functions that run inside test jobs (pickled by value, see conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from submitit.helpers import Checkpointable

from mft_hpc.rundir import atomic_write_json
from mft_hpc.slurm import distributed_env


def add(a, b):
    return a + b


def square(x):
    return x * x


def sleep_then_square(seconds, x):
    time.sleep(seconds)
    return x * x


def identity(x):
    return x


def env_probe(names):
    return {name: os.environ.get(name) for name in names}


def allreduce_rank_sum():
    import torch
    import torch.distributed as dist

    env = distributed_env()
    dist.init_process_group("gloo", init_method="env://", world_size=env.world_size, rank=env.rank)
    try:
        value = torch.tensor([float(env.rank + 1)])
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        return {"rank": env.rank, "world": env.world_size, "local_rank": env.local_rank,
                "master": env.master_addr, "port": env.master_port, "host": socket.gethostname(), "value": value.item()}
    finally:
        dist.destroy_process_group()


class StepCounter(Checkpointable):
    """Counts ``total`` steps; every start and step is appended to ``log_path``.

    Progress is kept in an atomic JSON file, so the job submitit requeues on preemption/timeout (through
    ``Checkpointable.checkpoint``) resumes from it rather than from zero.
    """

    def __init__(self, progress_path, log_path, total, step_s):
        self.progress_path = Path(progress_path)
        self.log_path = Path(log_path)
        self.total = total
        self.step_s = step_s

    def __call__(self):
        start = json.loads(self.progress_path.read_text())["step"] if self.progress_path.exists() else 0
        with self.log_path.open("a") as log:
            log.write(json.dumps({"start": start}) + "\n")
        for step in range(start, self.total):
            time.sleep(self.step_s)
            atomic_write_json(self.progress_path, {"step": step + 1})
            with self.log_path.open("a") as log:
                log.write(json.dumps({"step": step + 1}) + "\n")
        return self.total
