"""Submit a run's DAG: train (array over members) → generate (array over tasks, afterok on the
member's training) → evaluate (array, aftercorr: element i after generation element i) → collect
(afterany on every evaluation).

On Slurm everything is queued in one pass and the controller may exit. With the local executor
there is no scheduler to hold dependencies, so stages run one after another while the controller
waits (one job per stage and member, so the model loads once and the container starts once).
Only elements in ``todo`` are submitted; parents that are still queued or running are depended on
by their recorded job ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from mft_hpc.controller.plan import MemberPlan, RunPlan
from mft_hpc.controller.state import COMPLETED, FAILED, ElementSpec, StateChange, StateStore, last_line
from mft_hpc.slurm import Submitter, after_any, after_corr, after_ok
from mft_hpc.slurm.job_states import master_id

log = logging.getLogger(__name__)

Key = tuple[str, str, str]  # (stage, member, task); task '' for train and collect
COLLECT_MEMBER = "_run"

# Per-stage resources: generation and evaluation elements are single-task jobs.
GENERATE_OVERRIDES = {"nodes": 1, "tasks_per_node": 1}
EVALUATE_OVERRIDES = {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": 0}
COLLECT_OVERRIDES = {"nodes": 1, "tasks_per_node": 1, "gpus_per_node": 0, "cpus_per_task": 1}


def all_keys(plan: RunPlan) -> list[Key]:
    keys: list[Key] = []
    for member in plan.members:
        if member.config.train.enabled:
            keys.append(("train", member.name, ""))
        keys += [("generate", member.name, task) for task in member.tasks]
        keys += [("evaluate", member.name, task) for task in member.eval_tasks]
    keys.append(("collect", COLLECT_MEMBER, ""))
    return keys


def element_specs(plan: RunPlan) -> list[ElementSpec]:
    return [ElementSpec(stage, member, task, output_path=str(plan.output_of(stage, member, task)))
            for stage, member, task in all_keys(plan)]


def _log_path(job) -> str | None:
    paths = getattr(job, "paths", None)
    return str(paths.stderr) if paths is not None else None


@dataclass
class DagSubmitter:
    plan: RunPlan
    store: StateStore
    submitter: Submitter
    in_flight: dict[Key, str] = field(default_factory=dict)  # parents still queued/running -> job id
    submitted: dict[Key, str] = field(default_factory=dict)

    def _ids(self) -> dict[tuple, int]:
        return {(e.stage, e.member, e.task): e.id for e in self.store.elements()}

    def _record(self, keys: list[Key], jobs: list) -> None:
        ids = self._ids()
        for key, job in zip(keys, jobs):
            self.store.record_attempt(ids[key], job.job_id, log_path=_log_path(job))
            self.submitted[key] = job.job_id

    def _job_of(self, key: Key) -> str | None:
        return self.submitted.get(key) or self.in_flight.get(key)

    # -- Slurm: the whole DAG in one pass -----------------------------------------------------------

    def submit_slurm(self, todo: set[Key]) -> dict[Key, str]:
        run_name = self.plan.name
        train = [m for m in self.plan.members if ("train", m.name, "") in todo]
        if train:
            from jobs.pipeline import TrainElement

            jobs = self.submitter.map_array(TrainElement(), [m.config for m in train], [str(m.dir) for m in train],
                                            name=f"{run_name}-train")
            self._record([("train", m.name, "") for m in train], jobs)
        evaluation_ids: list[str] = []
        for member in self.plan.members:
            evaluation_ids += self._submit_member(member, todo)
        if ("collect", COLLECT_MEMBER, "") in todo:
            from jobs.pipeline import collect_run

            parents = evaluation_ids or [self._job_of(("generate", m.name, t)) for m in self.plan.members
                                         for t in m.tasks]
            parents = sorted({master_id(i) for i in parents if i})
            job = self.submitter.submit(collect_run, str(self.plan.run.root), name=f"{run_name}-collect",
                                        after=[after_any(parents)] if parents else [], overrides=COLLECT_OVERRIDES)
            self._record([("collect", COLLECT_MEMBER, "")], [job])
        return self.submitted

    def _submit_member(self, member: MemberPlan, todo: set[Key]) -> list[str]:
        from jobs.generate import generate_element
        from jobs.pipeline import evaluate_tasks

        cfg, name = member.config, member.name
        gen_tasks = [t for t in member.tasks if ("generate", name, t) in todo]
        gen_jobs: list = []
        if gen_tasks:
            train_job = self._job_of(("train", name, ""))
            n = len(gen_tasks)
            gen_jobs = self.submitter.map_array(
                generate_element, [str(member.model_dir)] * n, gen_tasks, [str(member.generate_dir)] * n,
                [cfg.generate] * n, [None] * n, [member.model_name] * n, [cfg.model.trust_remote_code] * n,
                after=[after_ok([train_job])] if train_job else [], name=f"{self.plan.name}-{name}-generate",
                overrides={**GENERATE_OVERRIDES, "gpus_per_node": min(1, cfg.cluster.gpus_per_node)})
            self._record([("generate", name, t) for t in gen_tasks], gen_jobs)
        eval_tasks = [t for t in member.eval_tasks if ("evaluate", name, t) in todo]
        if not eval_tasks:
            return [self._job_of(("evaluate", name, t)) for t in member.eval_tasks if self._job_of(("evaluate", name, t))]
        if eval_tasks == gen_tasks:
            after = [after_corr(gen_jobs)]  # element i starts as soon as generation element i is done
        else:
            parents = [self._job_of(("generate", name, t)) for t in eval_tasks]
            after = [after_ok([p for p in parents if p])] if any(parents) else []
        n = len(eval_tasks)
        eval_jobs = self.submitter.map_array(
            evaluate_tasks, [str(member.generations_dir)] * n, [member.model_name] * n, [[t] for t in eval_tasks],
            [cfg.generate.benchmarks] * n, [str(member.evaluate_dir)] * n, [cfg.evaluate] * n,
            [cfg.generate.limit] * n, after=after, name=f"{self.plan.name}-{name}-evaluate", overrides=EVALUATE_OVERRIDES)
        self._record([("evaluate", name, t) for t in eval_tasks], eval_jobs)
        return [j.job_id for j in eval_jobs]

    # -- local: stage by stage, waiting ---------------------------------------------------------------

    def _wait(self, keys: list[Key], job) -> bool:
        """Wait for a local job that serves ``keys``; states follow the outputs' .done markers."""
        self._record(keys, [job] * len(keys))
        error = None
        try:
            job.result()
        except Exception as exc:  # the job's own exception: recorded, the run goes on where it can
            error = last_line(str(exc)) or type(exc).__name__
            log.error("%s failed: %s", keys[0][0], error)
        ids = self._ids()
        changes = []
        for key in keys:
            done = self.plan.is_done(*key)
            changes.append(StateChange(ids[key], COMPLETED if done else FAILED,
                                       None if done else (error or "finished without its output")))
        self.store.update_states(changes)
        return all(self.plan.is_done(*key) for key in keys)

    def run_local(self, todo: set[Key]) -> None:
        from jobs.pipeline import TrainElement, collect_run, evaluate_tasks, generate_tasks

        for member in self.plan.members:
            cfg, name = member.config, member.name
            key = ("train", name, "")
            if key in todo and not self._wait([key], self.submitter.submit(
                    TrainElement(), cfg, str(member.dir), name=f"{self.plan.name}-{name}-train")):
                continue
            gen = [t for t in member.tasks if ("generate", name, t) in todo]
            if gen:
                self._wait([("generate", name, t) for t in gen], self.submitter.submit(
                    generate_tasks, str(member.model_dir), gen, str(member.generate_dir), cfg.generate,
                    member.model_name, cfg.model.trust_remote_code, name=f"{self.plan.name}-{name}-generate"))
            ready = [t for t in member.eval_tasks if ("evaluate", name, t) in todo and member.is_done("generate", t)]
            if ready:
                self._wait([("evaluate", name, t) for t in ready], self.submitter.submit(
                    evaluate_tasks, str(member.generations_dir), member.model_name, ready, cfg.generate.benchmarks,
                    str(member.evaluate_dir), cfg.evaluate, cfg.generate.limit, name=f"{self.plan.name}-{name}-evaluate"))
        key = ("collect", COLLECT_MEMBER, "")
        if key in todo:
            self._wait([key], self.submitter.submit(collect_run, str(self.plan.run.root),
                                                    name=f"{self.plan.name}-collect"))


def descendants(plan: RunPlan, keys: Iterable[Key]) -> set[Key]:
    """Every element downstream of ``keys`` (generation → its evaluation, anything → collect)."""
    out: set[Key] = set()
    for stage, member, task in keys:
        if stage == "train":
            m = plan.member(member)
            out |= {("generate", member, t) for t in m.tasks} | {("evaluate", member, t) for t in m.eval_tasks}
        elif stage == "generate":
            out.add(("evaluate", member, task))
        if stage != "collect":
            out.add(("collect", COLLECT_MEMBER, ""))
    return out & set(all_keys(plan))
