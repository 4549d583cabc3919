"""The name of one element of a run's DAG: ``ElementKey(stage, member, task, shard)``.

``task`` is ``''`` for train and collect; ``shard`` is set only for one shard of a generation task
split by ``generate.shard_size`` (None: the element is the whole task). The state store names the same
element by its columns (stage, member, task, element): ``store_key()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mft_hpc.rundir.states import COLLECT_MEMBER, STAGES

_TASK_STAGES = ("generate", "evaluate")


@dataclass(frozen=True, order=True, slots=True)
class ElementKey:
    # order: keys are sorted for printing (the CLI's outcome lines, `resume`'s redo lines); within a run
    # a task is either sharded or not, so two keys never differ only by a shard None against a number
    stage: str
    member: str
    task: str = ""
    shard: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"element key: stage {self.stage!r} is not one of {', '.join(STAGES)}")
        if (self.task != "") != (self.stage in _TASK_STAGES):
            raise ValueError(f"element key {self}: generate and evaluate elements name a task, train and collect none")
        if self.shard is not None and (self.stage != "generate" or type(self.shard) is not int or self.shard < 0):
            raise ValueError(f"element key {self}: a shard is a number >= 0 of a generation task")

    def store_key(self) -> tuple[str, str, str, int]:
        """(stage, member, task, element) as the state store's columns: a shard's element is its number."""
        return self.stage, self.member, self.task, self.shard or 0

    def __str__(self) -> str:
        """``generate/m0/mbpp/2``, ``train/m0``: the non-empty parts, joined by ``/``."""
        parts = [self.stage, self.member] + ([self.task] if self.task else [])
        return "/".join(parts + ([str(self.shard)] if self.shard is not None else []))


COLLECT_KEY = ElementKey("collect", COLLECT_MEMBER)  # the run's one collect element
