"""The Slurm layer over submitit: executors, arrays, dependencies, status, dry run."""

from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.slurm.dependency import Dependency, DependencyNeverSatisfied, after_any, after_corr, after_ok
from mft_hpc.slurm.distributed import DistributedEnv, distributed_env
from mft_hpc.slurm.dry_run import DryRunLog
from mft_hpc.slurm.executor import make_executor
from mft_hpc.slurm.status import StatusPoller
from mft_hpc.slurm.submit import Submitter

__all__ = [
    "Dependency", "DependencyNeverSatisfied", "DistributedEnv", "DryRunLog",
    "SlurmCommands", "StatusPoller", "Submitter", "after_any", "after_corr", "after_ok",
    "distributed_env", "make_executor",
]
