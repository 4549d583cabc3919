"""Training alone, without the rest of the pipeline: one Slurm array, one element per sweep member.

Each element runs ``jobs.pipeline.TrainElement`` (the controller's training element) in every task
(nodes × tasks_per_node). On preemption or time limit (Slurm's USR2) the training saves a checkpoint
after the current optimizer step, then submitit calls ``checkpoint`` (Checkpointable) and requeues
the job, which resumes from that checkpoint (``mft_hpc.train.preemption``). Submission goes through
the same validation and ``Submitter`` as ``mft-hpc run``.

    python -m jobs.train CONFIG [--dry-run]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mft_hpc.config import LoadedConfig, load_config
from mft_hpc.errors import UserError
from mft_hpc.rundir import RunDir


def submit_training(loaded: LoadedConfig, run: RunDir, *, dry_run=None) -> list:
    """Submit one training array for every member of ``loaded``; returns the submitit jobs."""
    from jobs.pipeline import TrainElement
    from mft_hpc.controller.operations import check_site, resolve_models, validate_members
    from mft_hpc.slurm import Submitter

    validate_members(loaded)
    if dry_run is None and loaded.members[0][1].cluster.executor == "slurm":
        check_site(loaded.members, loaded.source, stages=["train"])
    members, _ = resolve_models(loaded.members, loaded.config, dry_run=dry_run is not None)
    submitter = Submitter(members[0][1].cluster, run.logs, dry_run=dry_run)
    member_dirs = []
    for name, _ in members:
        member_dir = run.member(name).root
        member_dir.mkdir(parents=True, exist_ok=True)
        member_dirs.append(str(member_dir))
    return submitter.map_array(TrainElement(), [member for _, member in members], member_dirs,
                               name=f"{loaded.config.run.name}-train", stage="train")  # element i = member i


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.train", description="submit the training array")
    parser.add_argument("config")
    parser.add_argument("--dry-run", action="store_true", help="print the sbatch script, submit nothing")
    args = parser.parse_args(argv)
    try:
        loaded = load_config(args.config)
        run = RunDir.create(Path(loaded.config.run.root) / loaded.config.run.name)
        if args.dry_run:
            from mft_hpc.slurm import DryRunLog

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
