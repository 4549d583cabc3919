"""Submit a run's DAG: train (array over members) → generate (array over tasks, or over the shards of
tasks larger than ``generate.shard_size``; afterok on the member's training) → evaluate (one element
per task, started as soon as that task's generation is done) → collect (afterany on every evaluation).

Evaluation dependencies: with one generation element per task and the same tasks to evaluate, the
evaluation array is chained ``aftercorr`` (element i after generation element i). Otherwise (shards,
or a resume that submits a subset) a task's evaluation waits ``afterok`` on exactly its own
generation elements: a Slurm array has no per-element afterok, so each such task is its own job.

Each submission names its stage: its jobs get that stage's resources (``cluster.stages``, see
mft_hpc.config.stages). On Slurm everything is queued in one pass and the controller may exit. With the local executor
there is no scheduler to hold dependencies, so stages run one after another while the controller
waits (one job per stage and member, so the container starts once). Only elements in ``todo`` are
submitted; parents that are still queued or running are depended on by their recorded job ids.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from typing import Iterable

from mft_hpc.controller.plan import Key, MemberPlan, RunPlan
from mft_hpc.controller.state import COMPLETED, FAILED, ElementSpec, StateChange, StateStore, last_line
from mft_hpc.errors import UserError
from mft_hpc.slurm import Submitter, after_any, after_corr, after_ok
from mft_hpc.slurm.job_states import master_id

log = logging.getLogger(__name__)

COLLECT_MEMBER = "_run"
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
    sandbox_commands: list[str] = field(default_factory=list)  # dry run: what each evaluation element runs

    def _ids(self) -> dict[tuple, int]:
        return {(e.stage, e.member, e.task, e.element): e.id for e in self.store.elements()}

    def _record(self, keys: list[Key], jobs: list) -> None:
        ids = self._ids()
        for key, job in zip(keys, jobs):
            self.store.record_attempt(ids[store_key(key)], job.job_id, log_path=_log_path(job),
                                      process=self._local_process(job))
            self.submitted[key] = job.job_id

    def _local_process(self, job):
        """A local-executor job's process identity (its pid is the job id), so a dead one is noticed."""
        if self.submitter.dry_run is not None or self.plan.members[0].config.cluster.executor != "local":
            return None
        from mft_hpc.controller.local_jobs import local_process

        return local_process(job.job_id)

    def _job_of(self, key: Key) -> str | None:
        return self.submitted.get(key) or self.in_flight.get(key)

    # -- Slurm: the whole DAG in one pass -----------------------------------------------------------

    def submit_slurm(self, todo: set[Key]) -> dict[Key, str]:
        run_name = self.plan.name
        train = [m for m in self.plan.members if ("train", m.name, "") in todo]
        if train:
            from jobs.pipeline import TrainElement

            jobs = self.submitter.map_array(TrainElement(), [m.config for m in train], [str(m.dir) for m in train],
                                            name=f"{run_name}-train", stage="train")
            self._record([("train", m.name, "") for m in train], jobs)
        evaluation_ids: list[str] = []
        for member in self.plan.members:
            evaluation_ids += self._submit_member(member, todo)
        if COLLECT_KEY in todo:
            from jobs.pipeline import collect_run

            parents = evaluation_ids or [self._job_of(k) for m in self.plan.members for k in m.generate_keys()]
            parents = sorted({master_id(i) for i in parents if i})
            job = self.submitter.submit(collect_run, str(self.plan.run.root), name=f"{run_name}-collect",
                                        after=[after_any(parents)] if parents else [], stage="collect")
            self._record([COLLECT_KEY], [job])
        return self.submitted

    def _submit_member(self, member: MemberPlan, todo: set[Key]) -> list[str]:
        from jobs.generate import generate_element

        cfg, name = member.config, member.name
        gen_keys = [key for key in member.generate_keys() if key in todo]
        groups = member.generate_groups(gen_keys)  # one array element (one model load) per group
        gen_jobs: list = []
        if groups:
            train_job = self._job_of(("train", name, ""))
            n = len(groups)
            gen_jobs = self.submitter.map_array(
                generate_element, [str(member.model_dir)] * n, [[(k[2], shard_of(k)) for k in g] for g in groups],
                [str(member.generate_dir)] * n, [cfg.generate] * n, [member.model_name] * n,
                [cfg.model.trust_remote_code] * n,
                after=[after_ok([train_job])] if train_job else [], name=f"{self.plan.name}-{name}-generate",
                stage="generate")
            self._record([k for g in groups for k in g], [job for g, job in zip(groups, gen_jobs) for _ in g])
        eval_tasks = [t for t in member.eval_tasks if ("evaluate", name, t) in todo]
        if not eval_tasks:
            return [self._job_of(("evaluate", name, t)) for t in member.eval_tasks if self._job_of(("evaluate", name, t))]
        if gen_keys and gen_keys == [("generate", name, t) for t in eval_tasks] and len(groups) == len(gen_keys):
            # one generation element per task: element i starts as soon as generation element i is done
            jobs = self._evaluation_array(member, eval_tasks, [after_corr(gen_jobs)])
        else:
            parents = {t: list(dict.fromkeys(p for p in map(self._job_of, member.generate_keys(t)) if p))
                       for t in eval_tasks}
            free = [t for t in eval_tasks if not parents[t]]
            jobs = self._evaluation_array(member, free, []) if free else []
            for task in (t for t in eval_tasks if parents[t]):
                jobs.append(self._evaluation_job(member, task, parents[task]))
        return [job.job_id for job in jobs]

    def _evaluation_args(self, member: MemberPlan, tasks: list[str]) -> tuple:
        """The arguments of jobs.pipeline.evaluate_tasks for ``tasks`` of ``member``."""
        cfg = member.config
        # every member shares the run's verdict cache unless the config names one (across runs)
        cache_dir = cfg.evaluate.cache_dir or str(self.plan.run.verdict_cache)
        eval_cfg = cfg.evaluate.model_copy(update={"cache_dir": cache_dir})
        return (str(member.generations_dir), member.model_name, tasks, cfg.generate.benchmarks,
                str(member.evaluate_dir), eval_cfg, cfg.generate.limit, cfg.generate)

    def _evaluation_array(self, member: MemberPlan, tasks: list[str], after: list) -> list:
        from jobs.pipeline import evaluate_tasks

        calls = [self._evaluation_args(member, [t]) for t in tasks]
        jobs = self.submitter.map_array(evaluate_tasks, *zip(*calls), after=after,
                                        name=f"{self.plan.name}-{member.name}-evaluate", stage="evaluate")
        self._record_evaluation(member, tasks, jobs)
        return jobs

    def _evaluation_job(self, member: MemberPlan, task: str, parents: list[str]):
        """One task's evaluation as its own job, afterok on every generation element (shard) of the task."""
        from jobs.pipeline import evaluate_tasks

        job = self.submitter.submit(evaluate_tasks, *self._evaluation_args(member, [task]), after=[after_ok(parents)],
                                    name=f"{self.plan.name}-{member.name}-evaluate", stage="evaluate")
        self._record_evaluation(member, [task], [job])
        return job

    def _record_evaluation(self, member: MemberPlan, tasks: list[str], jobs: list) -> None:
        keys = [("evaluate", member.name, t) for t in tasks]
        self._record(keys, jobs)
        if self.submitter.dry_run is not None:
            command = _sandbox_command(member)
            self.sandbox_commands += [f"# {'/'.join(key[:3])}  ({job.job_id})\n{command}" for key, job in zip(keys, jobs)]

    def render_sandbox_commands(self) -> str:
        """The dry run's sandbox commands, one per evaluation element ('' when none)."""
        if not self.sandbox_commands:
            return ""
        return ("### sandbox commands (one per evaluation element; its programs reach the worker on stdin)\n"
                + "\n".join(self.sandbox_commands))

    # -- local: stage by stage, waiting ---------------------------------------------------------------

    def _wait(self, keys: list[Key], job) -> bool:
        """Wait for a local job that serves ``keys``; states follow the outputs' .done markers."""
        self._record(keys, [job] * len(keys))
        error = None
        try:
            job.result()
        except Exception as exc:  # the job's own exception: recorded, the run goes on where it can
            error = _exception_line(exc)
            log.error("%s failed: %s", keys[0][0], error)
        ids = self._ids()
        changes = []
        for key in keys:
            done = self.plan.is_done(*key)
            changes.append(StateChange(ids[store_key(key)], COMPLETED if done else FAILED,
                                       None if done else (error or "finished without its output")))
        self.store.update_states(changes)
        return all(self.plan.is_done(*key) for key in keys)

    def run_local(self, todo: set[Key]) -> None:
        from jobs.pipeline import TrainElement, collect_run, evaluate_tasks, generate_tasks

        for member in self.plan.members:
            cfg, name = member.config, member.name
            key = ("train", name, "")
            if key in todo and not self._wait([key], self.submitter.submit(
                    TrainElement(), cfg, str(member.dir), name=f"{self.plan.name}-{name}-train", stage="train")):
                continue
            gen = [key for key in member.generate_keys() if key in todo]
            if gen:
                self._wait(gen, self.submitter.submit(
                    generate_tasks, str(member.model_dir), [(key[2], shard_of(key)) for key in gen],
                    str(member.generate_dir), cfg.generate, member.model_name, cfg.model.trust_remote_code,
                    name=f"{self.plan.name}-{name}-generate", stage="generate"))
            ready = [t for t in member.eval_tasks if ("evaluate", name, t) in todo
                     and all(member.is_done("generate", t, shard_of(k)) for k in member.generate_keys(t))]
            if ready:
                self._wait([("evaluate", name, t) for t in ready], self.submitter.submit(
                    evaluate_tasks, *self._evaluation_args(member, ready), name=f"{self.plan.name}-{name}-evaluate",
                    stage="evaluate"))
        if COLLECT_KEY in todo:
            self._wait([COLLECT_KEY], self.submitter.submit(collect_run, str(self.plan.run.root),
                                                            name=f"{self.plan.name}-collect", stage="collect"))


def _exception_line(exc: Exception) -> str:
    """The line that says what went wrong: submitit wraps a job's traceback between dashed lines and
    ends with where the logs are, so the last line of its message is a path."""
    lines = str(exc).splitlines()
    fences = [i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"-"}]
    if len(fences) >= 2:
        return last_line("\n".join(lines[fences[0] + 1:fences[1]])) or type(exc).__name__
    return last_line(str(exc)) or type(exc).__name__


def _sandbox_command(member: MemberPlan) -> str:
    """The shell-quoted sandbox argv of the member's evaluation elements, or why it cannot be built."""
    from mft_hpc.config.stages import resolve_stage
    from mft_hpc.evaluate.runtime import evaluation_argv

    cfg = member.config
    try:
        argv = evaluation_argv(cfg.evaluate, cfg.evaluate.workers or resolve_stage(cfg.cluster, "evaluate").cpus_per_task)
    except UserError as err:
        return f"# WARNING: this element would fail: {err}"
    return shlex.join(argv)


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
