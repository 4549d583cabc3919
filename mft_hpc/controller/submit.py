"""Submit a run's DAG: train (array over members) → generate (array over tasks, or over the shards of
tasks larger than ``generate.shard_size``; afterok on the member's training) → evaluate (one element
per task, started as soon as that task's generation is done) → collect (afterany on every evaluation).

Two ways to cut the generation and evaluation arrays (``cluster.array_layout``):
- *member-major*: per member one generation array (its tasks) and one evaluation array: 2 submissions
  per member, best for a few members;
- *task-major*: per task (or shard) one generation array over the members, element m ``aftercorr`` on
  training element m, and per task one evaluation array ``aftercorr`` on its generation arrays:
  1 + 13 + 13 + 1 submissions whatever the number of members, each member still pipelined (member m's
  generation starts when member m's training ends). ``auto`` takes whichever needs fewer submissions.
  An element whose parents do not line up with one whole array of this submission (a resume of a
  subset) is submitted as its own job, ``afterok`` on its parents.

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
from typing import Callable

from mft_hpc.controller.dag import choose_layout, column_of
from mft_hpc.controller.local_jobs import exception_line
from mft_hpc.elements import CollectElement, EvaluateElement, GenerateElement, TrainElement
from mft_hpc.errors import UserError
from mft_hpc.rundir.state import COMPLETED, FAILED, StateChange, StateStore
from mft_hpc.runplan.key import COLLECT_KEY, ElementKey
from mft_hpc.runplan.plan import MemberPlan, RunPlan
from mft_hpc.slurm import Submitter, after_any, after_corr, after_ok
from mft_hpc.slurm.job_states import master_id

log = logging.getLogger(__name__)


def _log_path(job) -> str | None:
    paths = getattr(job, "paths", None)
    return str(paths.stderr) if paths is not None else None


@dataclass(frozen=True)
class StageElements:
    """What makes each stage's element: called with the element's fields (those of
    mft_hpc.elements' classes), it returns the callable submitit pickles and runs with no arguments.

    The pipeline's own element classes by default; the scale tests and bench pass no-op stages that
    take the same fields.
    """

    train: Callable[..., Callable] = TrainElement
    generate: Callable[..., Callable] = GenerateElement
    evaluate: Callable[..., Callable] = EvaluateElement
    collect: Callable[..., Callable] = CollectElement


@dataclass
class DagSubmitter:
    plan: RunPlan
    store: StateStore
    submitter: Submitter
    in_flight: dict[ElementKey, str] = field(default_factory=dict)  # parents still queued/running -> job id
    submitted: dict[ElementKey, str] = field(default_factory=dict)
    sandbox_commands: list[str] = field(default_factory=list)  # dry run: what each evaluation element runs
    functions: StageElements = field(default_factory=StageElements)  # default: the pipeline's elements
    layout: str | None = None  # member/task/auto; default: cluster.array_layout
    arrays: list[list] = field(default_factory=list)  # task-major: the element jobs of each array, in order
    _ids: dict[tuple, int] | None = None   # store key -> element id, read once per submission
    _array_of: dict[ElementKey, tuple[int, int]] = field(default_factory=dict)  # key -> (array, element position)
    _commands: dict[str, str] = field(default_factory=dict)  # dry run: evaluate section -> sandbox command

    def _id_of(self, key: ElementKey) -> int:
        if self._ids is None:
            self._ids = self.store.ids()
        return self._ids[key.store_key()]

    def _record(self, keys: list[ElementKey], jobs: list) -> None:
        """One transaction per submitted array; ids come from memory, not from re-reading the run."""
        if self._local_process(jobs[0]) is not None:  # the local executor: a few jobs, each its process
            for key, job in zip(keys, jobs):
                self.store.record_attempt(self._id_of(key), job.job_id, log_path=_log_path(job),
                                          process=self._local_process(job))
        else:
            self.store.record_attempts([(self._id_of(key), job.job_id, _log_path(job)) for key, job in zip(keys, jobs)])
        for key, job in zip(keys, jobs):
            self.submitted[key] = job.job_id

    def _local_process(self, job):
        """A local-executor job's process identity (its pid is the job id), so a dead one is noticed."""
        if self.submitter.dry_run is not None or self.plan.members[0].config.cluster.executor != "local":
            return None
        from mft_hpc.controller.local_jobs import local_process

        return local_process(job.job_id)

    def _job_of(self, key: ElementKey) -> str | None:
        return self.submitted.get(key) or self.in_flight.get(key)

    # -- Slurm: the whole DAG in one pass -----------------------------------------------------------

    def submit_slurm(self, todo: set[ElementKey]) -> dict[ElementKey, str]:
        layout = choose_layout(self.plan, todo, self.layout or self.plan.members[0].config.cluster.array_layout)
        self._submit_train(todo)
        if layout == "task":
            evaluation_ids = self._submit_task_major(todo)
        else:
            evaluation_ids = [i for member in self.plan.members for i in self._submit_member(member, todo)]
        if COLLECT_KEY in todo:
            self._submit_collect(evaluation_ids)
        return self.submitted

    def _submit_train(self, todo: set[ElementKey]) -> None:
        train = [m for m in self.plan.members if m.train_key in todo]
        if train:
            keys = [m.train_key for m in train]
            jobs = self.submitter.submit_array([self._train_element(m) for m in train],
                                               name=f"{self.plan.name}-train", stage="train")
            self._record(keys, jobs)
            self._add_array([[key] for key in keys], jobs)

    def _submit_collect(self, evaluation_ids: list[str]) -> None:
        parents = evaluation_ids or [self._job_of(k) for m in self.plan.members for k in m.generate_keys()]
        parents = sorted({master_id(i) for i in parents if i})
        job = self.submitter.submit(self.functions.collect(run_root=str(self.plan.run.root)),
                                    name=f"{self.plan.name}-collect", after=[after_any(parents)] if parents else [],
                                    stage="collect")
        self._record([COLLECT_KEY], [job])

    def _train_element(self, member: MemberPlan):
        return self.functions.train(config=member.config, member_dir=str(member.dir))

    def _generation_element(self, group: list[ElementKey]):
        """The element that generates ``group`` (keys of one member: ``generate.tasks_per_element``)."""
        member = self.plan.member(group[0].member)
        return self.functions.generate(model_dir=str(member.model_dir), units=column_of(group),
                                       out_dir=str(member.generate_dir), config=member.config.generate,
                                       model_name=member.model_name,
                                       trust_remote_code=member.config.model.trust_remote_code)

    # -- task-major: one array per task (shard, group of tasks) across members -------------------------

    def _add_array(self, groups: list[list[ElementKey]], jobs: list) -> None:
        """Remember an array of this submission: element i runs ``groups[i]``."""
        for position, group in enumerate(groups):
            for key in group:
                self._array_of[key] = (len(self.arrays), position)
        self.arrays.append(jobs)

    def _pending_parents(self, key: ElementKey) -> list[ElementKey]:
        """The parents of ``key`` that are not finished: submitted now or still queued/running."""
        member = self.plan.member(key.member)
        parents = [member.train_key] if key.stage == "generate" else member.generate_keys(key.task)
        return [p for p in parents if self._job_of(p)]

    def _lines_up(self, groups: list[list[ElementKey]]) -> tuple | None:
        """The arrays of this submission to chain ``groups`` to ``aftercorr`` (element i after element i
        of each), () when nothing is pending, or None when they do not line up (a pending parent from an
        earlier controller run, or not element i of one array of the same length)."""
        arrays: set[int] = set()
        for position, group in enumerate(groups):
            for parent in (p for key in group for p in self._pending_parents(key)):
                place = self._array_of.get(parent)
                if place is None or place[1] != position:
                    return None
                arrays.add(place[0])
        if any(len(self.arrays[array]) != len(groups) for array in arrays):
            return None
        return tuple(sorted(arrays))

    def _submit_column(self, groups: list[list[ElementKey]], submit_array: Callable, submit_one: Callable) -> list:
        """Submit one task-major column (one group of keys per member): elements whose pending parents
        sit in the same arrays form one array, ``aftercorr`` on them when they line up element for
        element (none pending: no dependency); any other element is its own job, ``afterok`` on its
        parents. Returns the jobs."""
        by_arrays: dict[tuple, list[list[ElementKey]]] = {}
        for group in groups:
            places = {self._array_of.get(p) for key in group for p in self._pending_parents(key)}
            arrays = None if None in places else tuple(sorted({place[0] for place in places}))
            by_arrays.setdefault(arrays, []).append(group)
        jobs: list = []
        alone = by_arrays.pop(None, [])
        for together in by_arrays.values():
            arrays = self._lines_up(together)
            if arrays is None:
                alone += together
                continue
            elements = submit_array(together, [after_corr(self.arrays[array]) for array in arrays])
            self._add_array(together, elements)
            jobs += elements
        position = {id(group): index for index, group in enumerate(groups)}
        for group in sorted(alone, key=lambda group: position[id(group)]):
            parents = dict.fromkeys(self._job_of(p) for key in group for p in self._pending_parents(key))
            jobs.append(submit_one(group, list(parents)))
        return jobs

    def _submit_task_major(self, todo: set[ElementKey]) -> list[str]:
        gen_columns: dict[tuple, list[list[ElementKey]]] = {}
        eval_columns: dict[str, list[list[ElementKey]]] = {}
        for member in self.plan.members:
            for group in member.generate_groups([key for key in member.generate_keys() if key in todo]):
                gen_columns.setdefault(column_of(group), []).append(group)
            for task in member.eval_tasks:
                if member.evaluate_key(task) in todo:
                    eval_columns.setdefault(task, []).append([member.evaluate_key(task)])
        name = self.plan.name

        def record(groups: list[list[ElementKey]], jobs: list) -> None:
            self._record([key for group in groups for key in group], [job for group, job in zip(groups, jobs)
                                                                       for _ in group])

        def generation_array(groups: list[list[ElementKey]], after: list) -> list:
            suffix = "-".join(key.task if key.shard is None else f"{key.task}-{key.shard}" for key in groups[0])
            jobs = self.submitter.submit_array([self._generation_element(group) for group in groups], after=after,
                                               name=f"{name}-generate-{suffix}", stage="generate")
            record(groups, jobs)
            return jobs

        def generation_job(group: list[ElementKey], parents: list[str]):
            job = self.submitter.submit(self._generation_element(group), after=[after_ok(parents)],
                                        name=f"{name}-{group[0].member}-generate", stage="generate")
            record([group], [job])
            return job

        def evaluation_array(groups: list[list[ElementKey]], after: list) -> list:
            keys = [group[0] for group in groups]
            elements = [self._evaluation_element(self.plan.member(key.member), [key.task]) for key in keys]
            jobs = self.submitter.submit_array(elements, after=after, name=f"{name}-evaluate-{keys[0].task}",
                                               stage="evaluate")
            record(groups, jobs)
            self._note_sandbox(keys, jobs)
            return jobs

        def evaluation_job(group: list[ElementKey], parents: list[str]):
            (key,) = group
            job = self.submitter.submit(self._evaluation_element(self.plan.member(key.member), [key.task]),
                                        after=[after_ok(parents)], name=f"{name}-{key.member}-evaluate",
                                        stage="evaluate")
            record([group], [job])
            self._note_sandbox([key], [job])
            return job

        for groups in gen_columns.values():
            self._submit_column(groups, generation_array, generation_job)
        evaluation_ids = []
        for groups in eval_columns.values():
            evaluation_ids += [job.job_id for job in self._submit_column(groups, evaluation_array, evaluation_job)]
        evaluation_ids += [self._job_of(m.evaluate_key(t)) for m in self.plan.members for t in m.eval_tasks
                           if m.evaluate_key(t) not in todo and self._job_of(m.evaluate_key(t))]
        return evaluation_ids

    def _note_sandbox(self, keys: list[ElementKey], jobs: list) -> None:
        """Dry run, task-major: each distinct sandbox command of an evaluation array once, with its elements."""
        if self.submitter.dry_run is None:
            return
        by_command: dict[str, list[str]] = {}
        for key, job in zip(keys, jobs):
            by_command.setdefault(self._sandbox_command(self.plan.member(key.member)), []).append(job.job_id)
        for command, ids in by_command.items():
            where = ids[0] if len(ids) == 1 else f"{len(ids)} elements: {ids[0]} .. {ids[-1]}"
            self.sandbox_commands.append(f"# evaluate/{keys[0].task}  ({where})\n{command}")

    # -- member-major: per member one generation and one evaluation array ------------------------------

    def _submit_member(self, member: MemberPlan, todo: set[ElementKey]) -> list[str]:
        name = member.name
        gen_keys = [key for key in member.generate_keys() if key in todo]
        groups = member.generate_groups(gen_keys)  # one array element (one model load) per group
        gen_jobs: list = []
        if groups:
            train_job = self._job_of(member.train_key)
            gen_jobs = self.submitter.submit_array(
                [self._generation_element(group) for group in groups],
                after=[after_ok([train_job])] if train_job else [], name=f"{self.plan.name}-{name}-generate",
                stage="generate")
            self._record([k for g in groups for k in g], [job for g, job in zip(groups, gen_jobs) for _ in g])
        eval_tasks = [t for t in member.eval_tasks if member.evaluate_key(t) in todo]
        if not eval_tasks:
            return [job for job in map(self._job_of, map(member.evaluate_key, member.eval_tasks)) if job]
        one_per_task = gen_keys == [ElementKey("generate", name, t) for t in eval_tasks]
        if gen_keys and one_per_task and len(groups) == len(gen_keys):
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

    def _evaluation_element(self, member: MemberPlan, tasks: list[str]):
        """The element that scores ``tasks`` of ``member`` in one sandbox batch."""
        cfg = member.config
        # every member shares the run's verdict cache unless the config names one (across runs)
        cache_dir = cfg.evaluate.cache_dir or str(self.plan.run.verdict_cache)
        return self.functions.evaluate(
            generations_dir=str(member.generations_dir), model_name=member.model_name, tasks=tuple(tasks),
            benchmarks_dir=cfg.generate.benchmarks, out_dir=str(member.evaluate_dir),
            config=cfg.evaluate.model_copy(update={"cache_dir": cache_dir}), limit=cfg.generate.limit,
            generate=cfg.generate)

    def _evaluation_array(self, member: MemberPlan, tasks: list[str], after: list) -> list:
        jobs = self.submitter.submit_array([self._evaluation_element(member, [t]) for t in tasks], after=after,
                                           name=f"{self.plan.name}-{member.name}-evaluate", stage="evaluate")
        self._record_evaluation(member, tasks, jobs)
        return jobs

    def _evaluation_job(self, member: MemberPlan, task: str, parents: list[str]):
        """One task's evaluation as its own job, afterok on every generation element (shard) of the task."""
        job = self.submitter.submit(self._evaluation_element(member, [task]), after=[after_ok(parents)],
                                    name=f"{self.plan.name}-{member.name}-evaluate", stage="evaluate")
        self._record_evaluation(member, [task], [job])
        return job

    def _record_evaluation(self, member: MemberPlan, tasks: list[str], jobs: list) -> None:
        keys = [member.evaluate_key(t) for t in tasks]
        self._record(keys, jobs)
        if self.submitter.dry_run is not None:
            command = self._sandbox_command(member)
            self.sandbox_commands += [f"# {key}  ({job.job_id})\n{command}" for key, job in zip(keys, jobs)]

    def _sandbox_command(self, member: MemberPlan) -> str:
        """The member's sandbox command, built once per distinct evaluate section (it hashes the image)."""
        key = member.config.evaluate.model_dump_json() + member.config.cluster.model_dump_json()
        if key not in self._commands:
            self._commands[key] = _sandbox_command(member)
        return self._commands[key]

    def render_sandbox_commands(self) -> str:
        """The dry run's sandbox commands, one per evaluation element ('' when none)."""
        if not self.sandbox_commands:
            return ""
        return ("### sandbox commands (one per evaluation element; its programs reach the worker on stdin)\n"
                + "\n".join(self.sandbox_commands))

    # -- local: stage by stage, waiting ---------------------------------------------------------------

    def _wait(self, keys: list[ElementKey], job) -> bool:
        """Wait for a local job that serves ``keys``; states follow the outputs' .done markers."""
        self._record(keys, [job] * len(keys))
        error = None
        try:
            job.result()
        except Exception as exc:  # the job's own exception: recorded, the run goes on where it can
            error = exception_line(exc)
            log.error("%s failed: %s", keys[0].stage, error)
        changes = []
        for key in keys:
            done = self.plan.is_done(key)
            changes.append(StateChange(self._id_of(key), COMPLETED if done else FAILED,
                                       None if done else (error or "finished without its output")))
        self.store.update_states(changes)
        return all(self.plan.is_done(key) for key in keys)

    def run_local(self, todo: set[ElementKey]) -> None:
        for member in self.plan.members:
            name = member.name
            key = member.train_key
            if key in todo and not self._wait([key], self.submitter.submit(
                    self._train_element(member), name=f"{self.plan.name}-{name}-train", stage="train")):
                continue
            gen = [key for key in member.generate_keys() if key in todo]
            if gen:  # one job for all of them: the model is loaded once
                self._wait(gen, self.submitter.submit(self._generation_element(gen),
                                                      name=f"{self.plan.name}-{name}-generate", stage="generate"))
            ready = [t for t in member.eval_tasks if member.evaluate_key(t) in todo
                     and all(member.is_done("generate", t, k.shard) for k in member.generate_keys(t))]
            if ready:
                self._wait([member.evaluate_key(t) for t in ready], self.submitter.submit(
                    self._evaluation_element(member, ready), name=f"{self.plan.name}-{name}-evaluate",
                    stage="evaluate"))
        if COLLECT_KEY in todo:
            self._wait([COLLECT_KEY], self.submitter.submit(self.functions.collect(run_root=str(self.plan.run.root)),
                                                            name=f"{self.plan.name}-collect", stage="collect"))


def _sandbox_command(member: MemberPlan) -> str:
    """The shell-quoted sandbox argv of the member's evaluation elements, or why it cannot be built."""
    from mft_hpc.config.stages import resolve_stage
    from mft_hpc.evaluate.sandbox import evaluation_argv

    cfg = member.config
    try:
        argv = evaluation_argv(cfg.evaluate, cfg.evaluate.workers or resolve_stage(cfg.cluster, "evaluate").cpus_per_task)
    except UserError as err:
        return f"# WARNING: this element would fail: {err}"
    return shlex.join(argv)
