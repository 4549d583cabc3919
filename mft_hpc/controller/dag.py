"""The run's DAG as keys: which elements a run has, what lies downstream of an element, and how many
submissions each array layout takes (the layouts themselves: mft_hpc.controller.submit)."""

from __future__ import annotations

from typing import Iterable

from mft_hpc.rundir.state import COLLECT_MEMBER, ElementSpec
from mft_hpc.runplan.plan import Key, RunPlan

COLLECT_KEY: Key = ("collect", COLLECT_MEMBER, "")


def shard_of(key: Key) -> int | None:
    return key[3] if len(key) > 3 else None


def store_key(key: Key) -> tuple[str, str, str, int]:
    """(stage, member, task, element) as the state store's columns: a shard's element is its number."""
    return (*key[:3], shard_of(key) or 0)


def all_keys(plan: RunPlan) -> list[Key]:
    keys: list[Key] = []
    for member in plan.members:
        if member.config.train.enabled:
            keys.append(("train", member.name, ""))
        keys += member.generate_keys()
        keys += [("evaluate", member.name, task) for task in member.eval_tasks]
    if collects(plan):
        keys.append(COLLECT_KEY)
    return keys


def collects(plan: RunPlan) -> bool:
    """Whether the run has a collect job (``collect.enabled``; off for e.g. ``run --only train``)."""
    return any(member.config.collect.enabled for member in plan.members)


def element_specs(plan: RunPlan) -> list[ElementSpec]:
    return [ElementSpec(*store_key(key), output_path=str(plan.output_of(*key))) for key in all_keys(plan)]


LAYOUTS = ("auto", "member", "task")


def submission_count(plan: RunPlan, todo: set[Key], layout: str) -> int:
    """How many sbatch calls (arrays) ``todo`` takes in ``layout`` (MaxArraySize splits aside)."""
    members = plan.members
    count = int(any(("train", m.name, "") in todo for m in members)) + int(COLLECT_KEY in todo)
    if layout == "task":
        columns = {tuple(key[2:] for key in group) for m in members
                   for group in m.generate_groups([key for key in m.generate_keys() if key in todo])}
        tasks = {t for m in members for t in m.eval_tasks if ("evaluate", m.name, t) in todo}
        return count + len(columns) + len(tasks)
    for member in members:
        count += int(any(key in todo for key in member.generate_keys()))
        tasks = [t for t in member.eval_tasks if ("evaluate", member.name, t) in todo]
        sharded = any(member.shard_count(t) > 1 for t in tasks)
        count += (len(tasks) if sharded else int(bool(tasks)))
    return count


def choose_layout(plan: RunPlan, todo: set[Key], layout: str = "auto") -> str:
    """``member`` or ``task``: as configured, else whichever needs fewer submissions (ties: member)."""
    if layout != "auto":
        return layout
    return "task" if submission_count(plan, todo, "task") < submission_count(plan, todo, "member") else "member"


def descendants(plan: RunPlan, keys: Iterable[Key]) -> set[Key]:
    """Every element downstream of ``keys`` (generation → its evaluation, anything → collect)."""
    out: set[Key] = set()
    for key in keys:
        stage, member, task = key[:3]
        if stage == "train":
            m = plan.member(member)
            out |= set(m.generate_keys()) | {("evaluate", member, t) for t in m.eval_tasks}
        elif stage == "generate":
            out.add(("evaluate", member, task))
        if stage != "collect":
            out.add(COLLECT_KEY)
    return out & set(all_keys(plan))
