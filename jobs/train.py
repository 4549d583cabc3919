"""Training job entry: one submitit job (array element) per sweep member.

``submit_training`` validates every member before submitting anything, then submits one array
(``submit_array``) with one element per member; each element runs ``TrainJob`` in every task
(nodes × tasks_per_node), and the job function itself sets up the process group. On preemption or
time limit (Slurm's USR2) the training saves a checkpoint after the current optimizer step, then
submitit calls ``checkpoint`` (Checkpointable) and requeues the job with the same callable, which
resumes from that checkpoint (``mft_hpc.train.preemption``).

    python -m jobs.train CONFIG [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from submitit.helpers import Checkpointable

from mft_hpc.config import LoadedConfig, load_config
from mft_hpc.config.schema import Config
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir
from mft_hpc.train.validate import validate_train_config


class TrainJob(Checkpointable):
    def __init__(self, config: Config, member_dir: str):
        self.config = config
        self.member_dir = member_dir

    def __call__(self) -> str:
        from mft_hpc.train import train_member

        return str(train_member(self.config, self.member_dir))


def validate_members(loaded: LoadedConfig) -> None:
    for _, member in loaded.members:
        validate_train_config(member, loaded.source)
    clusters = {member.cluster.model_dump_json() for _, member in loaded.members}
    if len(clusters) > 1:
        raise UserError(f"{loaded.source}: sweep: cluster.* must be the same for every member "
                        "(all members run as one Slurm array)")


def submit_training(loaded: LoadedConfig, run: RunDir, *, dry_run=None) -> list:
    """Submit one training array for every member of ``loaded``; returns the submitit jobs."""
    from mft_hpc.slurm.executor import make_executor

    validate_members(loaded)
    cluster = loaded.members[0][1].cluster
    executor = make_executor(cluster, run.logs / "train", name=f"{loaded.config.run.name}-train", dry_run=dry_run)
    tasks = []
    for name, member in loaded.members:
        member_dir = run.member(name)
        member_dir.mkdir(parents=True, exist_ok=True)
        tasks.append(TrainJob(member, str(member_dir)))
    return executor.submit_array(tasks)  # one Slurm array, element i = member i


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.train", description="submit the training array")
    parser.add_argument("config")
    parser.add_argument("--dry-run", action="store_true", help="print the sbatch script, submit nothing")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config)
        run = RunDir.create(Path(loaded.config.run.root) / loaded.config.run.name)
        if args.dry_run:
            from mft_hpc.slurm.dry_run import DryRunLog

            log = DryRunLog()
            submit_training(loaded, run, dry_run=log)
            print(log.render())
            return 0
        for job in submit_training(loaded, run):
            print(job.job_id)
    except UserError as err:
        for line in str(err).splitlines():
            print(f"mft-hpc: error: {line}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
