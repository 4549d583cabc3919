"""Submit functions, arrays and multi-node jobs with typed dependencies.

The one place where mft-hpc calls sbatch (through submitit):
- arrays larger than MaxArraySize are split into several Slurm arrays that share the %N throttle;
  the caller gets one flat list of jobs (aftercorr dependents are split like their parent, see
  mft_hpc.slurm.arrays);
- dependency ids that this submitter did not submit itself (e.g. from an earlier controller run)
  are looked up once and pruned when already satisfied, since slurmctld forgets finished jobs
  after MinJobAge and would leave the dependent pending forever;
- inherited SLURM_*/SBATCH_* variables are hidden while submitting from inside a job
  (submitit.helpers.clean_env), so a child job does not inherit its parent's allocation;
- with a DryRunLog every script is recorded and nothing is submitted;
- ``stage=`` gives a submission the resources of that stage (``cluster.stages``, see
  mft_hpc.config.stages); ``overrides`` then change single keys of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from submitit.helpers import clean_env

from mft_hpc.config.sections.cluster import ClusterSection
from mft_hpc.config.stages import resolve_stage
from mft_hpc.slurm.arrays import piece_dependencies, piece_throttles, plan_pieces
from mft_hpc.slurm.commands import SlurmCommands
from mft_hpc.slurm.dependency import Dependency, prune, sbatch_dependency_parameters
from mft_hpc.slurm.dry_run import DryRunLog
from mft_hpc.slurm.executor import make_executor, with_overrides
from mft_hpc.slurm.job_states import master_id
from mft_hpc.slurm.status import StatusPoller


class Submitter:
    def __init__(self, cluster: ClusterSection, folder: str | Path, *,
                 commands: SlurmCommands | None = None, dry_run: DryRunLog | None = None) -> None:
        self.cluster = cluster
        self.folder = Path(folder)
        self.commands = commands or SlurmCommands()
        self.dry_run = dry_run
        self._own_masters: set[str] = set()  # submitted by us in this process: never purged yet

    @property
    def _uses_slurm(self) -> bool:
        return self.dry_run is not None or self.cluster.executor == "slurm"

    def _max_array_size(self) -> int:
        return self.commands.max_array_size if self._uses_slurm else 10**9

    def _states_of_foreign_ids(self, dependencies: Sequence[Dependency]) -> dict[str, str]:
        """One squeue (+ one sacct) for dependency ids we did not submit ourselves."""
        foreign = {i for dep in dependencies for i in dep.job_ids
                   if master_id(i) not in self._own_masters and not i.startswith("DRY")}
        if not foreign or not self._uses_slurm:
            return {}
        return StatusPoller(self.commands).refresh(foreign)

    def resources(self, stage: str | None = None, overrides: dict[str, Any] | None = None) -> ClusterSection:
        """What a submission asks for: the stage's resources (or the cluster section), then ``overrides``."""
        cluster = resolve_stage(self.cluster, stage) if stage else self.cluster
        return with_overrides(cluster, **(overrides or {}))

    def _executor(self, name: str | None, stage: str | None, overrides: dict[str, Any] | None,
                  dependencies: list[Dependency]):
        if dependencies and not self._uses_slurm:
            raise ValueError("the local executor has no scheduler dependencies; wait for the parents first")
        return make_executor(self.resources(stage, overrides), self.folder, name=name, dry_run=self.dry_run,
                             sbatch_extra=sbatch_dependency_parameters(dependencies))

    def _run(self, submit: Callable[[], list]) -> list:
        with clean_env():
            jobs = submit()
        if self.dry_run is None and self._uses_slurm:
            self.commands.calls["sbatch"] += 1
        self._own_masters.update(master_id(job.job_id) for job in jobs)
        return jobs

    def submit(self, fn: Callable, *args: Any, after: Sequence[Dependency] = (), name: str | None = None,
               stage: str | None = None, overrides: dict[str, Any] | None = None, **kwargs: Any):
        """One job (``overrides`` e.g. ``{"nodes": 2, "tasks_per_node": 1}`` for a multi-node job)."""
        dependencies = prune(list(after), self._states_of_foreign_ids(after))
        executor = self._executor(name, stage, overrides, dependencies)
        return self._run(lambda: [executor.submit(fn, *args, **kwargs)])[0]

    def map_array(self, fn: Callable, *iterables: Iterable[Any], after: Sequence[Dependency] = (),
                  name: str | None = None, stage: str | None = None,
                  overrides: dict[str, Any] | None = None) -> list:
        """``fn(*args)`` for each zip of ``iterables`` as Slurm arrays (``%N`` = array_parallelism)."""
        calls = list(zip(*iterables))
        return self._array(len(calls), lambda executor, piece: executor.map_array(fn, *zip(*calls[piece])),
                           after, name, stage, overrides)

    def submit_array(self, fns: Sequence[Callable[[], Any]], after: Sequence[Dependency] = (),
                     name: str | None = None, stage: str | None = None,
                     overrides: dict[str, Any] | None = None) -> list:
        """One element per argument-less callable, e.g. a ResumableTask per generation task."""
        fns = list(fns)
        return self._array(len(fns), lambda executor, piece: executor.submit_array(fns[piece]),
                           after, name, stage, overrides)

    def _array(self, count: int, submit_piece: Callable[[Any, slice], list], after: Sequence[Dependency],
               name: str | None, stage: str | None, overrides: dict[str, Any] | None) -> list:
        if not count:
            return []
        after = list(after)
        states = self._states_of_foreign_ids(after)
        pieces = plan_pieces(count, self._max_array_size(), after)
        parallelism = self.resources(stage, overrides).array_parallelism
        jobs: list = []
        for piece, throttle in zip(pieces, piece_throttles(parallelism, len(pieces))):
            dependencies = prune(piece_dependencies(after, piece), states)
            executor = self._executor(name, stage, {**(overrides or {}), "array_parallelism": throttle}, dependencies)
            # a 1-element piece becomes a plain job (submitit's rule); arrays.py pairs it through afterok
            jobs += self._run(lambda: submit_piece(executor, slice(piece.start, piece.stop)))
        return jobs
