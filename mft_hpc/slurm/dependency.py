"""Typed Slurm dependencies, rendered into `sbatch --dependency`, and pruning of finished ids.

``after_corr`` holds the *element* ids of the parent array so that a dependent array can be split
exactly like a parent that was split into several Slurm arrays (see mft_hpc.slurm.arrays).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from mft_hpc.slurm.job_states import master_id

Kind = Literal["afterok", "afterany", "aftercorr"]

FINISHED_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
     "BOOT_FAIL", "DEADLINE"}
)
# terminal states after which an afterok/aftercorr dependent can never start
FAILED_STATES = FINISHED_STATES - {"COMPLETED"}


class DependencyNeverSatisfied(RuntimeError):
    """An afterok/aftercorr parent already ended unsuccessfully: the dependent could never run."""


@dataclass(frozen=True)
class Dependency:
    kind: Kind
    job_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("afterok", "afterany", "aftercorr"):
            raise ValueError(f"unknown dependency kind {self.kind!r}")

    def render(self) -> str:
        """``afterok:1:2`` (aftercorr names array masters: ``aftercorr:7``)."""
        ids = self.job_ids
        if self.kind == "aftercorr":
            ids = tuple(dict.fromkeys(master_id(i) for i in ids))
        return f"{self.kind}:" + ":".join(ids)


def _ids(jobs: Iterable) -> tuple[str, ...]:
    """Accept submitit jobs or plain ids."""
    return tuple(str(getattr(job, "job_id", job)) for job in jobs)


def after_ok(jobs: Iterable) -> Dependency:
    return Dependency("afterok", _ids(jobs))


def after_any(jobs: Iterable) -> Dependency:
    return Dependency("afterany", _ids(jobs))


def after_corr(array_jobs: Iterable) -> Dependency:
    """Element i of the dependent array waits for element i of ``array_jobs`` (ordered elements)."""
    return Dependency("aftercorr", _ids(array_jobs))


def sbatch_dependency_parameters(dependencies: Sequence[Dependency]) -> dict[str, str]:
    """The sbatch parameters for ``dependencies`` (all must hold: joined with ``,``).

    ``kill-on-invalid-dep=yes`` makes Slurm cancel a dependent whose afterok/aftercorr parent
    failed, instead of leaving it pending forever.
    """
    rendered = [dep.render() for dep in dependencies if dep.job_ids]
    if not rendered:
        return {}
    params = {"dependency": ",".join(rendered)}
    if any(dep.kind != "afterany" for dep in dependencies if dep.job_ids):
        params["kill-on-invalid-dep"] = "yes"
    return params


def prune(dependencies: Sequence[Dependency], states: dict[str, str]) -> list[Dependency]:
    """Drop ids whose dependency is already satisfied, so Slurm never sees ids it may have purged.

    ``states`` maps element/job ids to their state. afterok/aftercorr: COMPLETED ids go (an
    aftercorr on a whole array only goes when every element completed, since element i pairs with
    element i); afterany: any finished id goes. Raises DependencyNeverSatisfied when an
    afterok/aftercorr parent already failed.
    """
    pruned: list[Dependency] = []
    for dep in dependencies:
        if dep.kind != "afterany":
            failed = [i for i in dep.job_ids if states.get(i) in FAILED_STATES]
            if failed:
                raise DependencyNeverSatisfied(
                    f"{dep.kind} parent(s) {', '.join(failed)} ended as "
                    f"{', '.join(sorted({states[i] for i in failed}))}"
                )
        if dep.kind == "aftercorr":
            done = all(states.get(i) == "COMPLETED" for i in dep.job_ids)
            kept = () if done else dep.job_ids
        else:
            satisfied = {"COMPLETED"} if dep.kind == "afterok" else FINISHED_STATES
            kept = tuple(i for i in dep.job_ids if states.get(i) not in satisfied)
        if kept:
            pruned.append(Dependency(dep.kind, kept))
    return pruned
