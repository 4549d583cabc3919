"""The run's DAG as keys: which elements a run has, what lies downstream of an element, and how many
submissions each array layout takes (the layouts themselves: mft_hpc.controller.submit)."""

from __future__ import annotations

from typing import Iterable

from mft_hpc.rundir.state import ElementSpec
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import RunPlan


def all_keys(plan: RunPlan) -> list[ElementKey]:
    keys: list[ElementKey] = []
    for member in plan.members:
        if member.config.train.enabled:
            keys.append(member.train_key)
        keys += member.generate_keys()
        keys += [member.evaluate_key(task) for task in member.eval_tasks]
    if collects(plan):
        keys.append(COLLECT_KEY)
    return keys


def collects(plan: RunPlan) -> bool:
    """Whether the run has a collect job (``collect.enabled``; off for e.g. ``run --only train``)."""
    return any(member.config.collect.enabled for member in plan.members)


def element_specs(plan: RunPlan) -> list[ElementSpec]:
    return [ElementSpec(*key.store_key(), output_path=str(plan.output_of(key))) for key in all_keys(plan)]


LAYOUTS = ("auto", "member", "task")


def column_of(group: list[ElementKey]) -> tuple[tuple[str, int | None], ...]:
    """The (task, shard) units of one member's generation element: task-major, the members' elements
    with the same units form one array."""
    return tuple((key.task, key.shard) for key in group)


def submission_count(plan: RunPlan, todo: set[ElementKey], layout: str) -> int:
    """How many sbatch calls (arrays) ``todo`` takes in ``layout`` (MaxArraySize splits aside)."""
    members = plan.members
    count = int(any(m.train_key in todo for m in members)) + int(COLLECT_KEY in todo)
    if layout == "task":
        columns = {column_of(group) for m in members
                   for group in m.generate_groups([key for key in m.generate_keys() if key in todo])}
        tasks = {t for m in members for t in m.eval_tasks if m.evaluate_key(t) in todo}
        return count + len(columns) + len(tasks)
    for member in members:
        count += int(any(key in todo for key in member.generate_keys()))
        tasks = [t for t in member.eval_tasks if member.evaluate_key(t) in todo]
        sharded = any(member.shard_count(t) > 1 for t in tasks)
        count += (len(tasks) if sharded else int(bool(tasks)))
    return count


def choose_layout(plan: RunPlan, todo: set[ElementKey], layout: str = "auto") -> str:
    """``member`` or ``task``: as configured, else whichever needs fewer submissions (ties: member)."""
    if layout != "auto":
        return layout
    return "task" if submission_count(plan, todo, "task") < submission_count(plan, todo, "member") else "member"


def descendants(plan: RunPlan, keys: Iterable[ElementKey]) -> set[ElementKey]:
    """Every element downstream of ``keys`` (generation → its evaluation, anything → collect)."""
    out: set[ElementKey] = set()
    for key in keys:
        if key.stage == "train":
            m = plan.member(key.member)
            out |= set(m.generate_keys()) | {m.evaluate_key(t) for t in m.eval_tasks}
        elif key.stage == "generate":
            out.add(ElementKey("evaluate", key.member, key.task))
        if key.stage != "collect":
            out.add(COLLECT_KEY)
    return out & set(all_keys(plan))
