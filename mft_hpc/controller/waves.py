"""Submission in waves: a run whose DAG holds more jobs than the site lets this user queue now.

Members are taken in order while their elements fit what the limits leave free (mft_hpc.slurm.limits),
minus room for two more jobs (the advance job and collect). That wave is submitted as usual; a
small *advance job* (the collect stage's resources), ``afterany`` on every array of the wave, then
submits the next wave the same way once the wave has left the queue, and so on; collect goes with
the last wave. When not even one member fits (the queue is full of other jobs), only the advance
job is queued, to look again a few minutes later. Nothing is ever submitted that a limit would
refuse, so a submission never stops halfway. The state store's ``meta`` row ``waves`` says where the
run stands (the dashboard shows it; ``cancel`` cancels the advance job too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mft_hpc.rundir.states import COLLECT_MEMBER
from mft_hpc.runplan.key import ElementKey
from mft_hpc.runplan.plan import RunPlan
from mft_hpc.slurm.limits import SiteLimits

WAVES_META = "waves"
RESERVED_JOBS = 2  # the advance job and collect
RETRY_DELAY = "now+180"  # when nothing fits: when the advance job looks again


@dataclass(frozen=True)
class WaveCut:
    now: set[ElementKey]     # submitted now
    later: set[ElementKey]   # left to the advance job
    note: str = ""    # how the run is cut, in words ('' when it fits at once)


def _by_member(plan: RunPlan, todo: set[ElementKey]) -> list[tuple[str, list[ElementKey]]]:
    groups: dict[str, list[ElementKey]] = {}
    for key in todo:
        groups.setdefault(key.member, []).append(key)
    order = [m.name for m in plan.members]
    return [(name, groups[name]) for name in order if name in groups] + \
        [(name, keys) for name, keys in groups.items() if name not in set(order)]


def cut_wave(plan: RunPlan, todo: set[ElementKey], limits: SiteLimits | None) -> WaveCut:
    """The part of ``todo`` to submit now; the rest waits for the advance job."""
    if limits is None or not todo:
        return WaveCut(set(todo), set())
    free, reason = limits.free()
    if len(todo) <= free:
        return WaveCut(set(todo), set())
    budget = free - RESERVED_JOBS
    members = _by_member(plan, todo)
    now: set[ElementKey] = set()
    taken = 0
    for name, keys in members:
        if name == COLLECT_MEMBER or len(now) + len(keys) > budget:
            break
        now.update(keys)
        taken += 1
    later = set(todo) - now
    per_member = max(len(keys) for _, keys in members)
    per_wave = max(1, (limits.per_wave - RESERVED_JOBS) // per_member)
    real_members = sum(1 for name, _ in members if name != COLLECT_MEMBER)
    waves_left = -(-(real_members - taken) // per_wave)
    if not now:
        note = (f"{len(todo)} jobs to queue, but {reason} leaves room for {free}: not even one member "
                f"({per_member} jobs) fits now; a small job looks again in a few minutes")
    else:
        note = (f"{len(todo)} jobs exceed {reason}: submitting in waves; wave 1 = {taken} of {real_members} members "
                f"({len(now)} jobs) now, the other {real_members - taken} in about {waves_left} more wave(s) of up to "
                f"{per_wave} members, each submitted by a small job once the previous wave has left the queue")
    return WaveCut(now, later, note)


def read_waves(store) -> dict:
    """The ``waves`` row of the state store ({} when the run was submitted at once)."""
    text = store.meta(WAVES_META)
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}


def write_waves(store, **values) -> dict:
    waves = {**read_waves(store), **values}
    store.set_meta(WAVES_META, json.dumps(waves))
    return waves


def waves_line(waves: dict) -> str | None:
    """One line for the dashboard: where a run submitted in waves stands."""
    if not waves:
        return None
    if waves.get("cancelled"):
        return f"waves: cancelled after wave {waves.get('wave', '?')}"
    if waves.get("finished"):
        return f"waves: all {waves.get('wave', '?')} submitted ({waves.get('note', '')})"
    return (f"waves: wave {waves.get('wave', '?')} queued, the next one submitted by job {waves.get('advance_job')} "
            f"when it has left the queue ({waves.get('note', '')})")
